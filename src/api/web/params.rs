//! Query-string parameters: repeated keys and comma lists, unknown names refused, every bad
//! value answered with a 400 that names its parameter.

use std::str::FromStr;

use super::error::WebError;

pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses `raw` (the part after `?`), refusing any name not in `known`.
    pub fn parse(raw: Option<&str>, known: &[&str]) -> Result<Params, WebError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((k, _)) = pairs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            return Err(WebError::param(k, format!("unknown parameter; known: {}", known.join(", "))));
        }
        Ok(Params { pairs })
    }

    /// The last non-empty value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, v)| k == name && !v.trim().is_empty()).map(|(_, v)| v.trim())
    }

    pub fn num<T: FromStr>(&self, name: &str) -> Result<Option<T>, WebError>
    where
        T::Err: std::fmt::Display,
    {
        self.get(name).map(|v| v.parse().map_err(|e| WebError::param(name, format!("{v:?}: {e}")))).transpose()
    }

    /// Every value of `name`, repeated keys and comma-separated lists alike.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub fn nums<T: FromStr>(&self, name: &str) -> Result<Vec<T>, WebError>
    where
        T::Err: std::fmt::Display,
    {
        self.list(name).iter().map(|v| v.parse().map_err(|e| WebError::param(name, format!("{v:?}: {e}")))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_comma_lists_merge_and_bad_values_name_their_parameter() {
        let p =
            Params::parse(Some("state=running&state=queued,failed&from=7&layers=1,%202"), &["state", "from", "layers"])
                .unwrap();
        assert_eq!(p.list("state"), ["running", "queued", "failed"]);
        assert_eq!(p.num::<u64>("from").unwrap(), Some(7));
        assert_eq!(p.nums::<u32>("layers").unwrap(), [1, 2]);
        assert_eq!(p.num::<u64>("to").unwrap(), None);
        let bad = Params::parse(Some("from=x"), &["from"]).unwrap().num::<u64>("from").unwrap_err();
        assert_eq!((bad.status.as_u16(), bad.field.as_deref()), (400, Some("from")));
        let unknown = Params::parse(Some("form=1"), &["from"]).err().unwrap();
        assert!(unknown.message.starts_with("form: unknown parameter"), "{}", unknown.message);
    }
}
