//! List fields of experiment files. Each is read as the command line's text ("8,16",
//! "2^3..2^8", "fp16,bf16", "2:1"), and may also be written as TOML: an integer (`sizes = 16`,
//! `mode = 3`) or an array of integers and strings (`sizes = [8, 16]`,
//! `formats = ["fp16", "bf16"]`), which are joined with commas.

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum Item {
    Int(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ListText {
    One(Item),
    Many(Vec<Item>),
}

impl Item {
    fn text(self) -> String {
        match self {
            Item::Int(v) => v.to_string(),
            Item::Text(t) => t,
        }
    }
}

const EXPECTED: &str =
    "expected a string (\"8,16\"), an integer, or an array of integers and strings ([8, 16])";

/// A list field (see the module docs).
pub fn list_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match ListText::deserialize(d).map_err(|_| serde::de::Error::custom(EXPECTED))? {
        ListText::One(item) => Ok(item.text()),
        ListText::Many(items) => Ok(items
            .into_iter()
            .map(Item::text)
            .collect::<Vec<_>>()
            .join(",")),
    }
}

/// An optional list field (see the module docs); use with `#[serde(default)]`.
pub fn opt_list_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    list_text(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        #[serde(deserialize_with = "list_text")]
        sizes: String,
        #[serde(default, deserialize_with = "opt_list_text")]
        mode: Option<String>,
    }

    fn read(text: &str) -> Result<T, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn strings_integers_and_arrays_read_as_the_command_line_text() {
        assert_eq!(read("sizes = \"8,16\"").unwrap().sizes, "8,16");
        assert_eq!(read("sizes = 16").unwrap().sizes, "16");
        assert_eq!(read("sizes = [8, 16, \"2^6\"]").unwrap().sizes, "8,16,2^6");
        assert_eq!(
            read("sizes = 1\nmode = 3").unwrap().mode.as_deref(),
            Some("3")
        );
        assert_eq!(read("sizes = 1").unwrap().mode, None);
        // An empty array is an empty list: the field's own check refuses it by name.
        assert_eq!(read("sizes = []").unwrap().sizes, "");
        let e = read("sizes = 1.5").err().unwrap().to_string();
        assert!(e.contains("expected a string"), "{e}");
        let e = read("sizes = [true]").err().unwrap().to_string();
        assert!(e.contains("an array of integers and strings"), "{e}");
    }
}
