//! The unit an answer ends with, so that `5\text{ cm}` and `5\text{ m}` differ although both
//! normalize to `5` (`latex::normalize` drops units). Units are compared by a canonical key:
//! lower-cased words, a few abbreviations and spellings merged (`cm` = `centimeters`), a plural
//! `s` dropped, `square`/`sq`/`^2` and `cubic`/`cu`/`^3` as powers. A generic `units` matches any
//! unit, and an answer without a unit matches any unit.

use super::latex::{strip_delims, strip_trailing_unit_group, strip_unit_words};

const SYNONYMS: &[(&str, &[&str])] = &[
    ("cm", &["centimeter", "centimetre"]),
    ("mm", &["millimeter", "millimetre"]),
    ("km", &["kilometer", "kilometre"]),
    ("m", &["meter", "metre"]),
    ("in", &["inch", "inche"]),
    ("ft", &["foot", "feet"]),
    ("yd", &["yard"]),
    ("mi", &["mile"]),
    ("s", &["sec", "second"]),
    ("min", &["minute"]),
    ("h", &["hr", "hour"]),
    ("kg", &["kilogram"]),
    ("g", &["gram"]),
    ("lb", &["pound"]),
    ("oz", &["ounce"]),
    ("ml", &["milliliter", "millilitre"]),
    ("l", &["liter", "litre"]),
    ("mph", &[]),
    ("deg", &["degree"]),
];

/// The text of the unit `s` ends with, if any.
fn unit_text(s: &str) -> Option<&str> {
    let s = strip_delims(s.trim().trim_end_matches(['.', ',', ';', ':']));
    let s = s.trim_end_matches(['.', ',', ';']).trim_end();
    if let Some(prefix) = strip_trailing_unit_group(s) {
        return s.get(prefix.len()..);
    }
    let prefix = strip_unit_words(s);
    (prefix.len() < s.len()).then(|| &s[prefix.len()..])
}

fn canonical(word: &str) -> String {
    let w = word.to_ascii_lowercase();
    let w = if w.len() > 3 && w.ends_with('s') {
        &w[..w.len() - 1]
    } else {
        &w[..]
    };
    for (key, names) in SYNONYMS {
        if w == *key || names.contains(&w) {
            return key.to_string();
        }
    }
    w.to_string()
}

/// The canonical key of the unit `s` ends with; `None` when there is none or it is generic.
pub fn unit_key(s: &str) -> Option<String> {
    let text = unit_text(s)?;
    let mut key = String::new();
    let mut power = "";
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            // A command (`\text`, `\mbox`) is markup, not a unit word.
            i += 1 + b[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            continue;
        }
        if b[i].is_ascii_alphabetic() {
            let j = i + b[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            match canonical(&text[i..j]).as_str() {
                "unit" => return None,
                "sq" | "square" => power = "2",
                "cu" | "cubic" => power = "3",
                w => {
                    key.push_str(w);
                    key.push_str(power);
                    power = "";
                }
            }
            i = j;
        } else {
            if matches!(b[i], b'2' | b'3') && !key.is_empty() {
                key.push(b[i] as char);
            } else if b[i] == b'/' {
                key.push('/');
            }
            i += 1;
        }
    }
    (!key.is_empty()).then_some(key)
}

/// Whether two answers name different units (both have one, and the keys differ).
pub fn differ(a: &str, b: &str) -> bool {
    let wordy = |s: &str| s.bytes().any(|c| c.is_ascii_alphabetic());
    wordy(a) && wordy(b) && matches!((unit_key(a), unit_key(b)), (Some(x), Some(y)) if x != y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_keys() {
        assert_eq!(unit_key("5\\text{ cm}^2").as_deref(), Some("cm2"));
        assert_eq!(unit_key("5 square centimeters").as_deref(), Some("cm2"));
        assert_eq!(unit_key("18 dollars.").as_deref(), Some("dollar"));
        assert_eq!(unit_key("5\\text{ units}"), None);
        assert_eq!(unit_key("5"), None);
        assert!(differ("5\\text{ cm}", "5\\text{ m}."));
        assert!(!differ("5\\text{ inches}", "5 inches"));
        assert!(!differ("5\\text{ ft}", "5 feet"));
        assert!(!differ("5", "5\\text{ m}"));
    }
}
