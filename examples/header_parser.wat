;; The bundled example: reads `header.bin` from the directory preopened as `/data`, prints
;; what it is doing, and parses the header. The header's table offset points far past the
;; end of memory, so `parse_header` traps with an out-of-bounds load, the kind of bug wtrace
;; is for. Record it with `scripts/demo.sh`, or:
;;
;;   wtrace record --dir examples/data::/data examples/header_parser.wat
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)

  ;; 0: iovec for printing; 16: opened fd; 20: bytes read; 32: iovec for reading
  (data (i32.const 64) "header.bin")
  (data (i32.const 80) "opening /data/header.bin\n")
  (data (i32.const 112) "read the header, parsing it\n")
  (data (i32.const 144) "error: cannot open /data/header.bin\n")
  (data (i32.const 192) "header parsed\n")
  ;; 1024: the file's bytes

  (func $print (param $text i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $text))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  (func $read_header (result i32)
    (call $print (i32.const 80) (i32.const 25))
    ;; path_open(preopen 3, follow symlinks, "header.bin", no oflags, read rights, out fd at 16)
    (if (call $path_open (i32.const 3) (i32.const 1) (i32.const 64) (i32.const 10)
                         (i32.const 0) (i64.const 0x1fffffff) (i64.const 0x1fffffff)
                         (i32.const 0) (i32.const 16))
      (then
        (call $print (i32.const 144) (i32.const 36))
        (call $proc_exit (i32.const 2))))
    (i32.store (i32.const 32) (i32.const 1024))
    (i32.store (i32.const 36) (i32.const 1024))
    (drop (call $fd_read (i32.load (i32.const 16)) (i32.const 32) (i32.const 1) (i32.const 20)))
    (call $print (i32.const 112) (i32.const 28))
    (i32.const 1024))

  ;; Header: magic "WHDR", then the u32 offset of the entry table from the header's start.
  ;; The first table entry is loaded without checking the offset against the buffer.
  (func $parse_header (param $header i32) (result i32)
    (i32.load (i32.add (local.get $header) (i32.load offset=4 (local.get $header)))))

  (func (export "_start")
    (drop (call $parse_header (call $read_header)))
    (call $print (i32.const 192) (i32.const 14))))
