//! Suggestions for a mistyped name: the closest names by edit distance (a user, a folder of a
//! snapshot), so a typo gets "did you mean …?" instead of a bare "not found".

/// Up to `n` of `names` closest to `want` by edit distance, close enough to be a likely typo, or
/// whose local part starts with `want`'s (`karim@x` finds `karim.robert@x`).
pub fn closest(want: &str, names: &[String], n: usize) -> Vec<String> {
    let limit = (want.chars().count() / 3).max(2);
    let (local, domain) = want.split_once('@').unwrap_or((want, ""));
    let extends = |c: &str| {
        let (l, d) = c.split_once('@').unwrap_or((c, ""));
        !local.is_empty() && l.starts_with(local) && d == domain
    };
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .map(|c| (edit_distance(want, c), c))
        .filter(|(d, c)| *d <= limit || extends(c))
        .collect();
    scored.sort();
    scored.into_iter().take(n).map(|(_, c)| c.clone()).collect()
}

/// Levenshtein distance over characters, two rows of memory.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_suggestions() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("jdoe", "jdoe"), 0);
        let names: Vec<String> = ["john.doe", "jane.doe", "bob.smith", "johnny.doe"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(closest("jhon.doe", &names, 5), ["john.doe"]);
        assert_eq!(closest("jon.doe", &names, 5), ["john.doe", "jane.doe"]);
        assert!(closest("zzzzzz", &names, 5).is_empty());
        let names = ["karim.robert@example.org".to_string()];
        assert_eq!(closest("karim@example.org", &names, 5), names);
        assert!(closest("karim@other.org", &names, 5).is_empty());
    }
}
