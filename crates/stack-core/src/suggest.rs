//! "Did you mean …?": the nearest of a set of names to a misspelt one.

/// The candidate closest to `input`, if it is close enough to be a typo.
pub fn nearest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(input, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn suggests_close_names_only() {
        let keys = ["releases", "environments", "defaults"];
        assert_eq!(nearest("relases", keys), Some("releases"));
        assert_eq!(nearest("enviroments", keys), Some("environments"));
        assert_eq!(nearest("zzz", keys), None);
    }
}
