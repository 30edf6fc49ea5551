//! Guest text as the host shows it to a person: in `inspect` and `install`,
//! in the plugin file's comments and in lightningd's log. Every character
//! that does not show as itself (controls, bidi and other format characters,
//! zero-width and invisible fillers, variation selectors, line and paragraph
//! separators, spaces other than ' ', private-use and unassigned code
//! points) is written as an escape such as `\u{202e}`, so that a guest's
//! words cannot reorder, hide or break the text around them: a reason
//! `node\u{202e}detnarg` cannot read as "granted".

use std::fmt::{self, Display, Write};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Characters outside the hidden general categories that still show as
/// nothing: Unicode's `Default_Ignorable_Code_Point` (DerivedCoreProperties.txt)
/// that are letters or marks (Hangul fillers, the combining grapheme
/// joiner, Khmer inherent vowels, Mongolian and other variation selectors),
/// and the blank braille pattern.
const INVISIBLE: &[(char, char)] = &[
    ('\u{034f}', '\u{034f}'),
    ('\u{115f}', '\u{1160}'),
    ('\u{17b4}', '\u{17b5}'),
    ('\u{180b}', '\u{180f}'),
    ('\u{2800}', '\u{2800}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{fe00}', '\u{fe0f}'),
    ('\u{ffa0}', '\u{ffa0}'),
    ('\u{e0000}', '\u{e0fff}'),
];

/// Whether `c` is shown escaped: general categories Cc, Cf, Zl, Zp, Co, Cn
/// and Zs but ' ' (from the `unicode-properties` crate's tables), and
/// [`INVISIBLE`].
pub fn hidden(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::SpaceSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::Surrogate
    ) || INVISIBLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// `text` with every [`hidden`] character escaped (`\n`, `\t`, `\r`, else
/// `\u{…}`), to show as it is: prose, such as a reason.
pub fn shown(text: &str) -> Shown<'_> {
    Shown {
        text,
        quoted: false,
    }
}

/// `text` in double quotes, escaped as [`shown`] and with `"` and `\`
/// escaped too: a name, such as `node method "pay"` (what `{:?}` of a
/// `str` does, over the whole class of [`hidden`] characters).
pub fn quoted(text: &str) -> Shown<'_> {
    Shown { text, quoted: true }
}

/// Guest text escaped for showing; see [`shown`] and [`quoted`].
#[derive(Clone, Copy)]
pub struct Shown<'a> {
    text: &'a str,
    quoted: bool,
}

impl Shown<'_> {
    /// Whether `c` is written as an escape.
    fn escapes(&self, c: char) -> bool {
        hidden(c) || (self.quoted && (c == '"' || c == '\\'))
    }
}

impl Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.quoted {
            f.write_char('"')?;
        }
        let mut rest = self.text;
        // Printable ASCII runs are passed over a byte at a time (the common
        // case: a 16 KiB log line); other characters are looked up.
        let plain = |b: &u8| (b' '..=b'~').contains(b) && !(self.quoted && b"\"\\".contains(b));
        while let Some(at) = rest.bytes().position(|b| !plain(&b)) {
            let c = rest[at..].chars().next().unwrap_or_default();
            let end = at + c.len_utf8();
            if !self.escapes(c) {
                f.write_str(&rest[..end])?;
                rest = &rest[end..];
                continue;
            }
            f.write_str(&rest[..at])?;
            match c {
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                '\r' => f.write_str("\\r")?,
                '"' | '\\' => write!(f, "\\{c}")?,
                c => write!(f, "\\u{{{:x}}}", c as u32)?,
            }
            rest = &rest[end..];
        }
        f.write_str(rest)?;
        if self.quoted {
            f.write_char('"')?;
        }
        Ok(())
    }
}

/// A JSON formatter that writes every [`hidden`] character of a string as a
/// JSON escape (`\u202e`, a surrogate pair past U+FFFF): the same JSON, which
/// shows as it is on a terminal. Wraps another formatter (pretty or compact).
pub struct JsonEscaping<F>(pub F);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for JsonEscaping<F> {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some(at) = rest.find(hidden) {
            writer.write_all(&rest.as_bytes()[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            for unit in c.encode_utf16(&mut [0; 2]) {
                write!(writer, "\\u{unit:04x}")?;
            }
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }

    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// `value` as pretty JSON with every [`hidden`] character escaped.
pub fn json_pretty(value: &serde_json::Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        JsonEscaping(serde_json::ser::PrettyFormatter::new()),
    );
    value
        .serialize(&mut ser)
        .expect("a JSON value serializes into memory");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classes the review must never show raw, as ranges (from the
    /// Unicode tables named; each enumerated in full below).
    fn must_escape() -> Vec<char> {
        let mut chars: Vec<char> = (0..=0x10ffffu32)
            .filter_map(char::from_u32)
            .filter(|c| {
                matches!(
                    c.general_category(),
                    GeneralCategory::Control
                        | GeneralCategory::Format
                        | GeneralCategory::LineSeparator
                        | GeneralCategory::ParagraphSeparator
                        | GeneralCategory::PrivateUse
                        | GeneralCategory::Unassigned
                ) || (c.general_category() == GeneralCategory::SpaceSeparator && *c != ' ')
            })
            .collect();
        // Named in issue #18 and Default_Ignorable_Code_Point, whatever
        // their category; and spaces other than ' '.
        let named = [
            0x202e, 0x2066, 0x2067, 0x2068, 0x2069, 0x200b, 0x200c, 0x200d, 0x200e, 0x200f, 0x2028,
            0x2029, 0x061c, 0xfeff, 0x180e, 0x00ad, 0x034f, 0x115f, 0x1160, 0x3164, 0xffa0, 0x2800,
            0x17b4, 0x17b5, 0x180b, 0x180f, 0x00a0, 0x202f, 0x205f, 0x3000, 0x0085, 0xfff9, 0xfffa,
            0xfffb,
        ];
        let ranges = [
            (0x2000, 0x200a),
            (0x2060, 0x2064),
            (0x206a, 0x206f),
            (0xfe00, 0xfe0f),
            (0xe0000, 0xe007f),
            (0xe0100, 0xe01ef),
            (0x1bca0, 0x1bca3),
            (0x1d173, 0x1d17a),
        ];
        chars.extend(named.iter().filter_map(|&u| char::from_u32(u)));
        for (lo, hi) in ranges {
            chars.extend((lo..=hi).filter_map(char::from_u32));
        }
        chars
    }

    #[test]
    fn every_hidden_character_is_escaped_and_nothing_hidden_remains() {
        let chars = must_escape();
        assert!(
            chars.len() > 900_000,
            "Cn and Co are most of the code space"
        );
        for c in chars {
            let text = format!("a{c}b");
            let expected = match c {
                '\n' => "a\\nb".to_string(),
                '\t' => "a\\tb".to_string(),
                '\r' => "a\\rb".to_string(),
                c => format!("a\\u{{{:x}}}b", c as u32),
            };
            assert_eq!(shown(&text).to_string(), expected, "U+{:04X}", c as u32);
            assert_eq!(
                quoted(&text).to_string(),
                format!("\"{expected}\""),
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn what_is_shown_is_printable_ascii_or_visible_text() {
        // Every character, through the function: what comes out holds no
        // hidden character at all.
        let all: String = (0..=0x10ffffu32).filter_map(char::from_u32).collect();
        for out in [shown(&all).to_string(), quoted(&all).to_string()] {
            assert!(out.chars().all(|c| !hidden(c)));
            assert!(!out.contains(['\u{202e}', '\n', '\u{2028}', '\u{feff}', '\u{3164}']));
        }
    }

    #[test]
    fn visible_text_is_left_as_it_is() {
        let text = "pays invoices: 100 sat, déjà vu, 日本語, emoji 🦀, a\\b";
        assert_eq!(shown(text).to_string(), text);
        assert_eq!(
            quoted("pay \"x\"\\").to_string(),
            format!("{:?}", "pay \"x\"\\")
        );
        assert_eq!(
            shown("to show the node\u{202e}detnarg").to_string(),
            "to show the node\\u{202e}detnarg"
        );
    }

    #[test]
    fn json_keeps_its_value_and_escapes_what_is_hidden() {
        let value = serde_json::json!({"reason": "a\u{202e}b\u{e0041}c\u{3164}", "n": [1]});
        let text = json_pretty(&value);
        assert!(text.contains(r#""a\u202eb\udb40\udc41c\u3164""#), "{text}");
        assert!(text.is_ascii());
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
