//! The wall clock as Kubernetes writes it: RFC 3339 in UTC, to the second
//! (`2026-12-06T18:30:00Z`), the form of `creationTimestamp`, of a
//! revision's times and of a SOPS file's `lastmodified`.

/// Now, as Kubernetes writes a timestamp.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `duration` from now, in the same form (saturating far in the future).
pub fn after(duration: std::time::Duration) -> String {
    let later = jiff::SignedDuration::try_from(duration)
        .ok()
        .and_then(|d| jiff::Timestamp::now().checked_add(d).ok())
        .unwrap_or(jiff::Timestamp::MAX);
    later.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_a_timestamp_to_the_second_in_utc() {
        let now = super::now();
        assert_eq!(now.len(), "2026-12-06T18:30:00Z".len(), "{now}");
        assert!(now.ends_with('Z'), "{now}");
        assert!(now.parse::<jiff::Timestamp>().is_ok(), "{now}");
    }

    #[test]
    fn a_time_after_now_sorts_after_it() {
        let later = super::after(std::time::Duration::from_secs(3600));
        assert!(later > super::now(), "{later}");
        assert_eq!(later.len(), "2026-12-06T18:30:00Z".len(), "{later}");
    }
}
