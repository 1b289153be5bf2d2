//! The line an indentation slip is on.
//!
//! A line indented one space too far or too short is valid YAML surprisingly
//! often: the parser notices only lines later (`did not find expected key` on
//! the next line), or not at all (a mapping ends early, and the typed read
//! says `missing field` at the mapping's first line). The line to fix is the
//! one whose indentation breaks the step every other line of the file keeps
//! (2 in glgate's files); this module finds it, so the error points there.

/// Lines whose indentation breaks the file's step, near an error.
pub(super) struct Slips {
    /// The step (in spaces) the file's other lines keep; at least 2.
    step: usize,
    /// 1-based line numbers and their indentation, in file order.
    lines: Vec<(u64, usize)>,
}

/// How far from a reported line a slip may be to be named: a rule of a
/// policy or a section of the config, not the far end of the file.
const NEAR: u64 = 20;

impl Slips {
    /// The slips of `text`; none when the file keeps no step (every width
    /// used, or indentation in single spaces), since then nothing stands out.
    pub(super) fn of(text: &str) -> Slips {
        let widths = structural_widths(text);
        let mut counts = std::collections::BTreeMap::<usize, usize>::new();
        for (_, width) in &widths {
            *counts.entry(*width).or_default() += 1;
        }
        // Widths used by two lines or more set the step; a slip is usually alone.
        let step = counts
            .iter()
            .filter(|(width, count)| **width > 0 && **count >= 2)
            .fold(0, |step, (width, _)| gcd(step, *width));
        let lines = if step >= 2 {
            widths.into_iter().filter(|(_, w)| w % step != 0).collect()
        } else {
            Vec::new()
        };
        Slips { step, lines }
    }

    /// The slip nearest `line` (the earlier one on a tie), if one is near.
    pub(super) fn near(&self, line: u64) -> Option<(u64, usize)> {
        self.lines
            .iter()
            .copied()
            .filter(|(at, _)| at.abs_diff(line) <= NEAR)
            .min_by_key(|(at, _)| (at.abs_diff(line), *at))
    }

    /// What to tell the operator about the slip on `line`, indented `width`.
    pub(super) fn describe(&self, line: u64, width: usize) -> String {
        format!(
            "line {line} is indented {width} space{s} where the other lines are indented in steps of {step}: check its indentation",
            s = if width == 1 { "" } else { "s" },
            step = self.step
        )
    }
}

/// `(line, indentation)` of every line that carries YAML structure: not
/// blank lines, comments, document markers or the text of a block scalar
/// (`key: |`), whose indentation is free.
fn structural_widths(text: &str) -> Vec<(u64, usize)> {
    let mut widths = Vec::new();
    let mut block_scalar_above: Option<usize> = None;
    for (index, line) in text.lines().enumerate() {
        let content = line.trim_start_matches(' ');
        let width = line.len() - content.len();
        if content.trim().is_empty() {
            continue;
        }
        if let Some(parent) = block_scalar_above {
            if width > parent {
                continue;
            }
            block_scalar_above = None;
        }
        if content.starts_with('#') || content.starts_with("---") || content.starts_with("...") {
            continue;
        }
        if opens_block_scalar(content) {
            block_scalar_above = Some(width);
        }
        widths.push((u64::try_from(index + 1).unwrap_or(u64::MAX), width));
    }
    widths
}

/// Whether a line ends in a block scalar indicator (`|`, `>-`, `|2+`, …).
fn opens_block_scalar(content: &str) -> bool {
    let without_comment = match content.find(" #") {
        Some(at) => &content[..at],
        None => content,
    };
    let last = without_comment
        .trim_end()
        .rsplit(' ')
        .next()
        .unwrap_or_default();
    let mut chars = last.chars();
    matches!(chars.next(), Some('|' | '>'))
        && chars.all(|c| matches!(c, '-' | '+') || c.is_ascii_digit())
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_off_the_step_is_found() {
        let text = "rules:\n  - id: a\n    methods: [GET]\n     paths:\n      - /user\n  - id: b\n    methods: [GET]\n    paths:\n      - /users\n";
        let slips = Slips::of(text);
        assert_eq!(slips.near(5), Some((4, 5)));
        assert_eq!(slips.near(2), Some((4, 5)));
        assert_eq!(slips.near(40), None);
        assert_eq!(
            slips.describe(4, 5),
            "line 4 is indented 5 spaces where the other lines are indented in steps of 2: check its indentation"
        );
    }

    #[test]
    fn block_scalars_comments_and_stepless_files_are_not_slips() {
        let text = "a:\n  b: |\n     free text\n   more\n  c: 1\n   # a comment\n  d: 2\n";
        assert_eq!(Slips::of(text).near(3), None);
        let single_spaced = "a:\n b:\n  c: 1\n d: 2\n";
        assert_eq!(Slips::of(single_spaced).near(2), None);
    }
}
