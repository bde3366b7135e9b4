//! Times and durations as a user types them: `30d`, `12h`, `90m`, `45s`, `2w`; dates as
//! `2026-11-01` or `2026-11-01T12:00:00Z` (UTC).

use std::time::Duration;

/// `30d`, `12h`, `90m`, `45s`, `2w`, `500ms`.
pub fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 =
        num.parse().map_err(|_| format!("{text:?}: expected a number and a unit, like 30d, 12h, 90m or 45s"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        "w" => n * 7.0 * 86_400.0,
        u => return Err(format!("{text:?}: unknown unit {u:?} (ms, s, m, h, d or w)")),
    };
    if !(secs.is_finite() && secs > 0.0 && secs < 1e11) {
        return Err(format!("{text:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Unix milliseconds of `2026-11-01` (midnight UTC) or `2026-11-01T12:30:00Z`.
pub fn date_ms(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?}: expected a date like 2026-11-01 or 2026-11-01T12:30:00Z (UTC)");
    let t = text.trim().trim_end_matches('Z');
    let (day, clock) = t.split_once('T').unwrap_or((t, "00:00:00"));
    let ymd: Vec<&str> = day.split('-').collect();
    let hms: Vec<&str> = clock.split(':').collect();
    if ymd.len() != 3 || hms.is_empty() || hms.len() > 3 {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let (y, m, d) = (num(ymd[0])?, num(ymd[1])?, num(ymd[2])?);
    let month = time::Month::try_from(u8::try_from(m).map_err(|_| bad())?).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(
        i32::try_from(y).map_err(|_| bad())?,
        month,
        u8::try_from(d).map_err(|_| bad())?,
    )
    .map_err(|_| bad())?;
    let part = |i: usize| hms.get(i).map_or(Ok(0), |s| num(s));
    let (h, mi, s) = (part(0)?, part(1)?, part(2)?);
    let t = time::Time::from_hms(
        u8::try_from(h).map_err(|_| bad())?,
        u8::try_from(mi).map_err(|_| bad())?,
        u8::try_from(s).map_err(|_| bad())?,
    )
    .map_err(|_| bad())?;
    Ok(date.with_time(t).assume_utc().unix_timestamp() * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_dates_parse_and_bad_ones_say_why() {
        assert_eq!(duration("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(duration("30").unwrap_err().contains("unknown unit"));
        assert!(duration("0s").unwrap_err().contains("positive"));
        assert!(duration("d").is_err());
        assert_eq!(date_ms("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(date_ms("2026-11-01T12:30:00Z").unwrap(), date_ms("2026-11-01").unwrap() + 45_000_000);
        assert!(date_ms("2026-13-01").is_err());
        assert!(date_ms("yesterday").is_err());
    }
}
