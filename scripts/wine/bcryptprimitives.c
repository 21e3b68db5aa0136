/* ProcessPrng for Wine releases before 9, which lack bcryptprimitives.dll: the Rust standard
   library takes its randomness there, so a Windows test binary cannot start without it.
   `scripts/test.sh` builds this into the Wine prefix it runs the Windows tests in. */
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length) {
        ULONG n = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n;
        length -= n;
    }
    return TRUE;
}
