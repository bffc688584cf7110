//! Whole numbers as JSON counts them: `2968.0` is the integer 2968, as JSON Schema says (a number
//! without a fraction is an integer) and as clients that write every number as a float send it.
//! serde alone refuses it for an integer field; these accept it, and still refuse fractions,
//! negative numbers and numbers too large for the field, with a message that says which.

use std::fmt;

use serde::{Deserializer, de};

/// Largest float that is exactly a whole number: beyond it, a float cannot tell neighbours apart.
const EXACT_FLOAT: f64 = 9_007_199_254_740_992.0;

struct Whole<T>(std::marker::PhantomData<T>);

impl<T: TryFrom<u64>> de::Visitor<'_> for Whole<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number, not negative")
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        T::try_from(n).map_err(|_| E::custom(format!("{n} is too large")))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        match u64::try_from(n) {
            Ok(n) => self.visit_u64(n),
            Err(_) => Err(E::custom(format!("{n} is negative"))),
        }
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<T, E> {
        if n.fract() != 0.0 || !n.is_finite() {
            Err(E::custom(format!("{n} is not a whole number")))
        } else if n < 0.0 {
            Err(E::custom(format!("{n} is negative")))
        } else if n > EXACT_FLOAT {
            Err(E::custom(format!("{n} is too large")))
        } else {
            // Whole, non-negative and exact, so the conversion loses nothing.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            self.visit_u64(n as u64)
        }
    }
}

/// For `#[serde(deserialize_with = "crate::whole::number")]`.
pub fn number<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(Whole(std::marker::PhantomData))
}

struct Optional<T>(std::marker::PhantomData<T>);

impl<'de, T: TryFrom<u64>> de::Visitor<'de> for Optional<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number, not negative, or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        number(d).map(Some)
    }
}

/// For an optional field: `null` or absent (with `#[serde(default)]`) is `None`.
pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<Option<T>, D::Error> {
    d.deserialize_option(Optional(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Both {
        #[serde(deserialize_with = "super::number")]
        n: u32,
        #[serde(default, deserialize_with = "super::optional")]
        o: Option<u64>,
    }

    fn parse(json: &str) -> Result<Both, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn integers_and_floats_without_a_fraction_are_whole_numbers() {
        assert_eq!(parse(r#"{"n": 7}"#), Ok(Both { n: 7, o: None }));
        assert_eq!(
            parse(r#"{"n": 2968.0, "o": 3.0}"#),
            Ok(Both {
                n: 2968,
                o: Some(3)
            })
        );
        assert_eq!(
            parse(r#"{"n": 1e3, "o": null}"#),
            Ok(Both { n: 1000, o: None })
        );
        assert_eq!(parse(r#"{"n": 4294967295}"#).map(|b| b.n), Ok(u32::MAX));
    }

    #[test]
    fn fractions_negatives_and_overflows_are_refused_saying_which() {
        for (json, says) in [
            (r#"{"n": 1.5}"#, "not a whole number"),
            (r#"{"n": -1}"#, "negative"),
            (r#"{"n": -2.0}"#, "negative"),
            (r#"{"n": 4294967296}"#, "too large"),
            (r#"{"n": 1, "o": 1e300}"#, "too large"),
            (r#"{"n": "7"}"#, "a whole number"),
        ] {
            let error = parse(json).unwrap_err();
            assert!(error.contains(says), "{json}: {error}");
        }
    }
}
