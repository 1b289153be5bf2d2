//! Token expiry: GitLab's `expires_at` dates, and the warnings glgate logs as
//! the date comes near (30, 7 and 1 days before).

/// Seconds in a day.
pub(super) const DAY: i64 = 86_400;

/// The days before expiry at which a warning is logged.
pub(super) const WARN_DAYS: [i64; 3] = [30, 7, 1];

/// Seconds since the epoch, now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `YYYY-MM-DD` → the first second of that day, UTC (a GitLab token with
/// `expires_at: D` stops working when D begins).
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if text.len() != 10 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // Refuse 2025-02-30 and the like: it must print back as given.
    (format_date(days * DAY) == text).then_some(days * DAY)
}

/// Seconds since the epoch → `YYYY-MM-DD` (UTC).
pub fn format_date(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The smallest warning threshold (in days) the expiry has crossed, if any.
pub(super) fn warning_level(expires_at: i64, now: i64) -> Option<i64> {
    let left = expires_at - now;
    WARN_DAYS
        .iter()
        .rev()
        .copied()
        .find(|days| left <= days * DAY)
}

/// Remembers which warning was logged, so each threshold is logged once per
/// token (and again after a restart, which is what an operator wants).
#[derive(Debug, Default)]
pub(super) struct Warnings {
    logged: Option<(i64, i64)>,
}

impl Warnings {
    /// Logs a warning when `expires_at` crossed a new threshold.
    pub(super) fn check(&mut self, expires_at: i64, now: i64) {
        let Some(level) = warning_level(expires_at, now) else {
            return;
        };
        if self.logged == Some((expires_at, level)) {
            return;
        }
        self.logged = Some((expires_at, level));
        let date = format_date(expires_at);
        if expires_at <= now {
            tracing::error!(
                expires_at = %date,
                "the GitLab token has expired: rotate it (`glgate token rotate`) or replace token_file"
            );
        } else {
            tracing::warn!(
                expires_at = %date,
                days = level,
                "the GitLab token expires within {level} day(s): rotate it (`glgate token rotate`) or enable upstream.auto_rotate"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-01-01"), Some(20_454 * DAY));
        assert_eq!(format_date(20_454 * DAY + 5), "2026-01-01");
        assert_eq!(
            parse_date("2024-02-29").map(format_date).unwrap(),
            "2024-02-29"
        );
        assert_eq!(parse_date("2025-02-29"), None);
        assert_eq!(parse_date("2025-13-01"), None);
        assert_eq!(parse_date("2025-1-01"), None);
        assert_eq!(parse_date("soon"), None);
    }

    #[test]
    fn thresholds() {
        let now = 1_000 * DAY;
        assert_eq!(warning_level(now + 40 * DAY, now), None);
        assert_eq!(warning_level(now + 30 * DAY, now), Some(30));
        assert_eq!(warning_level(now + 6 * DAY, now), Some(7));
        assert_eq!(warning_level(now + DAY / 2, now), Some(1));
        assert_eq!(warning_level(now - DAY, now), Some(1));
    }
}
