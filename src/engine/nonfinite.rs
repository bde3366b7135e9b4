//! Serde for floats that may be NaN or infinite. JSON has no such numbers (serde_json writes
//! them as `null` and then refuses to read `null` back as a float), and a run that explodes
//! ends with exactly these values in its summary. They are written as the strings "NaN",
//! "inf" and "-inf"; `null` (what older builds stored) reads back as NaN.

use serde::{Deserialize, Deserializer, Serializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Number(f64),
    Text(String),
    Null,
}

fn to_f64<E: serde::de::Error>(v: Stored) -> Result<f64, E> {
    match v {
        Stored::Number(x) => Ok(x),
        Stored::Null => Ok(f64::NAN),
        Stored::Text(t) => match t.as_str() {
            "NaN" | "nan" => Ok(f64::NAN),
            "inf" | "+inf" | "Infinity" => Ok(f64::INFINITY),
            "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
            other => Err(E::custom(format!("expected a number, \"NaN\", \"inf\" or \"-inf\", found {other:?}"))),
        },
    }
}

fn write<S: Serializer>(x: f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_nan() {
        s.serialize_str("NaN")
    } else if x.is_infinite() {
        s.serialize_str(if x > 0.0 { "inf" } else { "-inf" })
    } else {
        s.serialize_f64(x)
    }
}

pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    write(*x, s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    to_f64(Stored::deserialize(d)?)
}

/// For `Option<f64>`: `None` stays `null`... except that older builds wrote NaN as `null` too;
/// those read back as `None`, which is what a missing ratio means.
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match x {
            Some(x) => write(*x, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Stored::deserialize(d)? {
            Stored::Null => Ok(None),
            v => to_f64(v).map(Some),
        }
    }
}

/// For `Vec<f64>`.
pub mod vec {
    use serde::ser::SerializeSeq;

    use super::*;

    struct Item(f64);

    impl serde::Serialize for Item {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            write(self.0, s)
        }
    }

    pub fn serialize<S: Serializer>(xs: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(xs.len()))?;
        for &x in xs {
            seq.serialize_element(&Item(x))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<Stored>::deserialize(d)?.into_iter().map(to_f64).collect()
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug)]
    struct T {
        #[serde(with = "super")]
        a: f64,
        #[serde(with = "super::option", default)]
        b: Option<f64>,
        #[serde(with = "super::vec")]
        c: Vec<f64>,
    }

    fn same(x: f64, y: f64) -> bool {
        x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
    }

    #[test]
    fn every_float_round_trips_through_json() {
        for x in [0.0, -0.0, 1.5e-300, f64::MAX, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let t = T { a: x, b: Some(x), c: vec![x, 1.0] };
            let json = serde_json::to_string(&t).unwrap();
            let back: T = serde_json::from_str(&json).unwrap();
            assert!(same(back.a, x) && same(back.b.unwrap(), x) && same(back.c[0], x), "{x}: {json}");
        }
    }

    #[test]
    fn what_older_builds_stored_still_reads() {
        let back: T = serde_json::from_str(r#"{"a": null, "b": null, "c": [null, 2.0]}"#).unwrap();
        assert!(back.a.is_nan() && back.b.is_none() && back.c[0].is_nan() && back.c[1] == 2.0);
        let err = serde_json::from_str::<T>(r#"{"a": "lots", "c": []}"#).unwrap_err();
        assert!(err.to_string().contains("lots"), "{err}");
    }
}
