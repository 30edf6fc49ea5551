//! Rune-style conditions on a granted method's params, written as CLN
//! operators write rune restrictions, parsed once when the policy is read.
//!
//! `pnameNAME<OP>VALUE` tests a keyword param, `parrN<OP>VALUE` a positional
//! one, `pnum<OP>N` their count. OP is `=` (equals), `/` (differs), `^`
//! (starts with), `$` (ends with), `~` (contains), `<` / `>` (integer less /
//! greater), `!` (absent). `a|b` holds when either alternative does.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One entry of a grant's `params`: its alternatives, parsed, and the text
/// the operator wrote (for refusals and `inspect`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Condition {
    text: String,
    alternatives: Vec<Test>,
}

/// One alternative: which param, and what must be true of it.
#[derive(Debug, Clone)]
struct Test {
    subject: Subject,
    op: Op,
}

#[derive(Debug, Clone)]
enum Subject {
    Name(String),
    Index(usize),
    Count,
}

#[derive(Debug, Clone)]
enum Op {
    Equals(String),
    Differs(String),
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    Less(i64),
    Greater(i64),
    Absent,
}

impl Condition {
    /// As the operator wrote it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether `params` (an array or an object) satisfy it.
    pub fn holds(&self, params: &Value) -> bool {
        self.alternatives.iter().any(|t| t.holds(params))
    }
}

impl TryFrom<String> for Condition {
    type Error = anyhow::Error;

    fn try_from(text: String) -> anyhow::Result<Condition> {
        let alternatives = text
            .split('|')
            .map(Test::parse)
            .collect::<anyhow::Result<_>>()
            .with_context(|| format!("condition {text:?}"))?;
        Ok(Condition { text, alternatives })
    }
}

impl From<Condition> for String {
    fn from(c: Condition) -> String {
        c.text
    }
}

const OPS: &[char] = &['=', '/', '^', '$', '~', '<', '>', '!'];

impl Test {
    fn parse(text: &str) -> anyhow::Result<Test> {
        let at = text
            .find(OPS)
            .context("no operator (one of = / ^ $ ~ < > !)")?;
        let (field, rest) = text.split_at(at);
        let op_char = rest.chars().next().expect("found an operator");
        let value = rest[op_char.len_utf8()..].to_string();
        let subject = if let Some(name) = field.strip_prefix("pname") {
            Subject::Name(name.to_string())
        } else if let Some(index) = field.strip_prefix("parr") {
            Subject::Index(index.parse().context("parrN needs a number")?)
        } else if field == "pnum" {
            Subject::Count
        } else {
            bail!("unknown field {field:?}: use pnameNAME, parrN or pnum");
        };
        let integer = || value.parse::<i64>().context("< and > compare integers");
        let op = match op_char {
            '=' => Op::Equals(value),
            '/' => Op::Differs(value),
            '^' => Op::StartsWith(value),
            '$' => Op::EndsWith(value),
            '~' => Op::Contains(value),
            '<' => Op::Less(integer()?),
            '>' => Op::Greater(integer()?),
            '!' => Op::Absent,
            other => unreachable!("{other} is not in OPS"),
        };
        Ok(Test { subject, op })
    }

    fn holds(&self, params: &Value) -> bool {
        let param = match (&self.subject, params) {
            (Subject::Count, Value::Array(a)) => Some(Value::from(a.len())),
            (Subject::Count, Value::Object(o)) => Some(Value::from(o.len())),
            (Subject::Name(n), Value::Object(o)) => o.get(n).cloned(),
            (Subject::Index(i), Value::Array(a)) => a.get(*i).cloned(),
            // A name condition cannot be checked on positional params (we do
            // not know the method's parameter order), nor an index on named
            // ones: refuse rather than guess.
            _ => return false,
        };
        let Some(param) = param else {
            return matches!(self.op, Op::Absent);
        };
        let text = match &param {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match &self.op {
            Op::Absent => false,
            Op::Equals(v) => text == *v,
            Op::Differs(v) => text != *v,
            Op::StartsWith(v) => text.starts_with(v.as_str()),
            Op::EndsWith(v) => text.ends_with(v.as_str()),
            Op::Contains(v) => text.contains(v.as_str()),
            Op::Less(v) => text.parse::<i64>().is_ok_and(|p| p < *v),
            Op::Greater(v) => text.parse::<i64>().is_ok_and(|p| p > *v),
        }
    }
}
