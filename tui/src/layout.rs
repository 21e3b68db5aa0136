//! Where everything goes on a screen of a given size: the title line, the timeline, the panes
//! and the hint bar. One pure function, used both to draw and to find what a click hit. Narrow
//! or short terminals show fewer panes at once: the focused one always.

use ratatui::layout::{Constraint, Direction, Layout as Split, Rect};

use crate::app::Pane;

/// A screen's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub title: Rect,
    pub timeline: Rect,
    pub panes: Vec<(Pane, Rect)>,
    pub hint: Rect,
}

impl Layout {
    /// Where `pane` is, if it is on screen.
    pub fn pane(&self, pane: Pane) -> Option<Rect> {
        self.panes.iter().find(|(p, _)| *p == pane).map(|(_, r)| *r)
    }
}

fn split(area: Rect, direction: Direction, constraints: &[Constraint]) -> Vec<Rect> {
    Split::default().direction(direction).constraints(constraints.to_vec()).split(area).to_vec()
}

/// The layout of `area` with `focus` focused, `zoom`ed or not.
pub(crate) fn compute(area: Rect, focus: Pane, zoom: bool) -> Layout {
    let with_timeline = area.height >= 8;
    let rows = split(
        area,
        Direction::Vertical,
        &[
            Constraint::Length(1),
            Constraint::Length(u16::from(with_timeline)),
            Constraint::Min(1),
            Constraint::Length(1),
        ],
    );
    let (title, timeline, middle, hint) = (rows[0], rows[1], rows[2], rows[3]);
    let panes = if zoom || area.width < 60 || area.height < 16 {
        vec![(focus, middle)]
    } else if area.width >= 100 && area.height >= 24 {
        wide(middle)
    } else {
        medium(middle, focus)
    };
    Layout { title, timeline, panes, hint }
}

/// Every pane: events and details on the left; code, frames beside locals, registers and
/// memory on the right.
fn wide(area: Rect) -> Vec<(Pane, Rect)> {
    let columns =
        split(area, Direction::Horizontal, &[Constraint::Percentage(45), Constraint::Percentage(55)]);
    let left =
        split(columns[0], Direction::Vertical, &[Constraint::Percentage(62), Constraint::Percentage(38)]);
    let right = split(
        columns[1],
        Direction::Vertical,
        &[Constraint::Percentage(38), Constraint::Percentage(26), Constraint::Percentage(36)],
    );
    let middle =
        split(right[1], Direction::Horizontal, &[Constraint::Percentage(50), Constraint::Percentage(50)]);
    let bottom =
        split(right[2], Direction::Horizontal, &[Constraint::Percentage(55), Constraint::Percentage(45)]);
    vec![
        (Pane::Events, left[0]),
        (Pane::Details, left[1]),
        (Pane::Code, right[0]),
        (Pane::Frames, middle[0]),
        (Pane::Locals, middle[1]),
        (Pane::Registers, bottom[0]),
        (Pane::Memory, bottom[1]),
    ]
}

/// Events on the left; code and frames (or locals, when focused) on the right, over the
/// focused one of details, registers and memory (details when none of them is focused).
fn medium(area: Rect, focus: Pane) -> Vec<(Pane, Rect)> {
    let columns =
        split(area, Direction::Horizontal, &[Constraint::Percentage(50), Constraint::Percentage(50)]);
    let right = split(
        columns[1],
        Direction::Vertical,
        &[Constraint::Percentage(40), Constraint::Percentage(20), Constraint::Percentage(40)],
    );
    let lower = match focus {
        Pane::Registers | Pane::Memory => focus,
        _ => Pane::Details,
    };
    let stack = if focus == Pane::Locals { Pane::Locals } else { Pane::Frames };
    vec![(Pane::Events, columns[0]), (Pane::Code, right[0]), (stack, right[1]), (lower, right[2])]
}
