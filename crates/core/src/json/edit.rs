//! Editing JSON text in place: an object's members and an array's elements are read as unparsed
//! slices of the text (where each value sits), and only the spans that change are replaced, so
//! every other byte (spacing, key order, numbers as written) stays as it came and nothing is
//! re-serialised.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The members of the JSON object `text`, each value left unparsed, in order. Duplicate keys are
/// refused (parsers disagree on which one wins): the error says `duplicate key`.
pub fn members(text: &str) -> serde_json::Result<Vec<(Cow<'_, str>, &RawValue)>> {
    let mut de = serde_json::Deserializer::from_slice(text.as_bytes());
    let entries = (&mut de).deserialize_map(MembersVisitor)?;
    de.end()?;
    Ok(entries)
}

/// The elements of the JSON array `text`, each left unparsed, in order.
pub fn elements(text: &str) -> serde_json::Result<Vec<&RawValue>> {
    serde_json::from_slice(text.as_bytes())
}

/// The value of `key` among `members`.
pub fn member<'a>(members: &[(Cow<'_, str>, &'a RawValue)], key: &str) -> Option<(usize, &'a RawValue)> {
    members.iter().position(|(k, _)| k == key).map(|i| (i, members[i].1))
}

/// Where `part` (a slice borrowed from `whole`) sits in `whole`.
pub fn span_in(whole: &[u8], part: &str) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start..end)
}

/// A JSON string literal of `text`.
pub fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| String::from("\"\""))
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::new();
        // Small objects are searched; a large one gets a set, so a body of a hundred thousand
        // keys costs linear time, not quadratic.
        let mut seen: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(key) = map.next_key::<CowStr<'de>>()? {
            let repeated = if entries.len() < 16 {
                entries.iter().any(|(k, _)| *k == key.0)
            } else {
                let seen = seen.get_or_insert_with(|| entries.iter().map(|(k, _)| k.clone()).collect());
                !seen.insert(key.0.clone())
            };
            if repeated {
                return Err(de::Error::custom(format_args!(
                    "duplicate key `{}`",
                    key.0.chars().take(64).collect::<String>()
                )));
            }
            let value: &'de RawValue = map.next_value()?;
            entries.push((key.0, value));
        }
        Ok(entries)
    }
}

/// A key that borrows from the input unless it contains escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CowStrVisitor)
    }
}

struct CowStrVisitor;

impl<'de> Visitor<'de> for CowStrVisitor {
    type Value = CowStr<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(CowStr(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(CowStr(Cow::Owned(v.to_owned())))
    }
}

/// Replacements at spans of one text, applied in one pass.
#[derive(Debug, Default)]
pub struct Edits {
    list: Vec<(Range<usize>, String)>,
}

impl Edits {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Replaces `span` with `text` (an empty span inserts).
    pub fn replace(&mut self, span: Range<usize>, text: impl Into<String>) {
        self.list.push((span, text.into()));
    }

    pub fn insert(&mut self, at: usize, text: impl Into<String>) {
        self.replace(at..at, text);
    }

    /// The text with every edit applied. Insertions at a point go before a replacement starting
    /// there, in the order they were made; an edit overlapping an earlier one, or outside the
    /// text, is a bug of the caller and is left out rather than corrupting the output.
    pub fn apply(mut self, text: &[u8]) -> Vec<u8> {
        self.list.sort_by_key(|(span, _)| (span.start, span.end));
        let extra: usize = self.list.iter().map(|(_, s)| s.len()).sum();
        let mut out = Vec::with_capacity(text.len() + extra);
        let mut at = 0;
        for (span, replacement) in &self.list {
            if span.start < at || span.end < span.start || span.end > text.len() {
                continue;
            }
            out.extend_from_slice(&text[at..span.start]);
            out.extend_from_slice(replacement.as_bytes());
            at = span.end;
        }
        out.extend_from_slice(&text[at..]);
        out
    }
}

/// Edits of one object's members or one array's elements: replace a value, remove an item,
/// add members at the front or the back, with the commas kept right.
#[derive(Debug, Clone)]
pub struct ContainerEdit {
    /// The container's span, from its `{`/`[` to its `}`/`]` inclusive.
    span: Range<usize>,
    /// Each item's value span, in order.
    items: Vec<Range<usize>>,
    removed: Vec<bool>,
    replaced: Vec<(usize, String)>,
    front: Vec<String>,
    back: Vec<String>,
}

impl ContainerEdit {
    /// An object: `raw` and its `members` are slices of `whole`. `None` when they are not.
    pub fn object(whole: &[u8], raw: &RawValue, members: &[(Cow<'_, str>, &RawValue)]) -> Option<Self> {
        Self::new(whole, raw, members.iter().map(|(_, v)| *v))
    }

    /// An array: `raw` and its `elements` are slices of `whole`.
    pub fn array(whole: &[u8], raw: &RawValue, elements: &[&RawValue]) -> Option<Self> {
        Self::new(whole, raw, elements.iter().copied())
    }

    fn new<'v>(whole: &[u8], raw: &RawValue, values: impl Iterator<Item = &'v RawValue>) -> Option<Self> {
        let span = span_in(whole, raw.get())?;
        if span.len() < 2 {
            return None;
        }
        let items: Vec<Range<usize>> = values.map(|v| span_in(whole, v.get())).collect::<Option<_>>()?;
        let removed = vec![false; items.len()];
        Some(ContainerEdit { span, items, removed, replaced: Vec::new(), front: Vec::new(), back: Vec::new() })
    }

    /// Replaces the value of item `i`.
    pub fn replace(&mut self, i: usize, value: impl Into<String>) {
        if i < self.items.len() {
            self.replaced.push((i, value.into()));
        }
    }

    pub fn remove(&mut self, i: usize) {
        if let Some(r) = self.removed.get_mut(i) {
            *r = true;
        }
    }

    /// Adds a member (`"key":value`) or element at the front.
    pub fn push_front(&mut self, item: impl Into<String>) {
        self.front.push(item.into());
    }

    /// Adds a member or element at the back.
    pub fn push_back(&mut self, item: impl Into<String>) {
        self.back.push(item.into());
    }

    /// Sets member `key` (at `pos` when it is there) to `value`: replaced in place, else added at
    /// the front.
    pub fn set_front(&mut self, pos: Option<usize>, key: &str, value: impl Into<String>) {
        match pos {
            Some(i) => self.replace(i, value),
            None => self.push_front(format!("{}:{}", quoted(key), value.into())),
        }
    }

    /// Sets member `key` to `value`: replaced in place, else added at the back.
    pub fn set_back(&mut self, pos: Option<usize>, key: &str, value: impl Into<String>) {
        match pos {
            Some(i) => self.replace(i, value),
            None => self.push_back(format!("{}:{}", quoted(key), value.into())),
        }
    }

    pub fn is_unchanged(&self) -> bool {
        !self.removed.contains(&true) && self.replaced.is_empty() && self.front.is_empty() && self.back.is_empty()
    }

    /// Adds the edits to `edits` (spans in `whole`).
    pub fn emit(&self, whole: &[u8], edits: &mut Edits) {
        let inner = self.span.start + 1..self.span.end - 1;
        let kept: Vec<usize> = (0..self.items.len()).filter(|&i| !self.removed[i]).collect();
        for (i, value) in &self.replaced {
            if !self.removed[*i] {
                edits.replace(self.items[*i].clone(), value.clone());
            }
        }
        let Some(&first_kept) = kept.first() else {
            // Nothing of the old content stays: the inner text is replaced whole.
            let added: Vec<&str> = self.front.iter().chain(&self.back).map(String::as_str).collect();
            if !self.items.is_empty() || !added.is_empty() {
                edits.replace(inner, added.join(","));
            }
            return;
        };
        for i in (0..self.items.len()).filter(|&i| self.removed[i]) {
            // Before the first kept item: from where this item's text begins to where the
            // next one's does (its comma with it). After it: from the end of the previous
            // value, so the comma before it goes.
            let span = if i < first_kept {
                let from = if i == 0 { inner.start } else { after_comma(whole, self.items[i - 1].end) };
                from..after_comma(whole, self.items[i].end)
            } else {
                self.items[i - 1].end..self.items[i].end
            };
            edits.replace(span, "");
        }
        if !self.front.is_empty() {
            edits.insert(inner.start, format!("{},", self.front.join(",")));
        }
        if !self.back.is_empty() {
            edits.insert(inner.end, format!(",{}", self.back.join(",")));
        }
    }
}

/// The position just after the `,` that follows `from` (past JSON whitespace). In valid JSON an
/// item that is not the last is followed by one; otherwise `from` itself.
fn after_comma(whole: &[u8], from: usize) -> usize {
    let mut at = from;
    while let Some(&b) = whole.get(at) {
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => at += 1,
            b',' => return at + 1,
            _ => break,
        }
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object_edit(text: &str, edit: impl FnOnce(&mut ContainerEdit, &[(Cow<'_, str>, &RawValue)])) -> String {
        let raw: &RawValue = serde_json::from_str(text).unwrap();
        let members = members(raw.get()).unwrap();
        let mut e = ContainerEdit::object(text.as_bytes(), raw, &members).unwrap();
        edit(&mut e, &members);
        let mut edits = Edits::new();
        e.emit(text.as_bytes(), &mut edits);
        let out = String::from_utf8(edits.apply(text.as_bytes())).unwrap();
        serde_json::from_str::<serde_json::Value>(&out).unwrap_or_else(|e| panic!("{out}: {e}"));
        out
    }

    #[test]
    fn members_keep_order_and_refuse_duplicates() {
        let m = members(r#"{"b":1, "a" : [2], "c\u0064":"x"}"#).unwrap();
        let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["b", "a", "cd"]);
        assert_eq!(m[1].1.get(), "[2]");
        assert!(members(r#"{"a":1,"a":2}"#).unwrap_err().to_string().starts_with("duplicate key `a`"));
        assert!(members("[1]").is_err());
        let wide: String = format!("{{{}}}", (0..100_000).map(|i| format!("\"k{i}\":0")).collect::<Vec<_>>().join(","));
        assert_eq!(members(&wide).unwrap().len(), 100_000);
        let repeated = wide.replacen("}", ",\"k99\":1}", 1);
        assert!(members(&repeated).unwrap_err().to_string().starts_with("duplicate key `k99`"));
        assert!(members("{} x").is_err());
    }

    #[test]
    fn removing_members_keeps_commas_right_wherever_they_are() {
        let text = r#"{ "a":1 , "b" :2,"c":3 }"#;
        assert_eq!(object_edit(text, |e, _| e.remove(0)), r#"{ "b" :2,"c":3 }"#);
        assert_eq!(object_edit(text, |e, _| e.remove(1)), r#"{ "a":1,"c":3 }"#);
        assert_eq!(object_edit(text, |e, _| e.remove(2)), r#"{ "a":1 , "b" :2 }"#);
        assert_eq!(
            object_edit(text, |e, _| {
                e.remove(0);
                e.remove(1)
            }),
            r#"{"c":3 }"#
        );
        assert_eq!(
            object_edit(text, |e, _| {
                e.remove(0);
                e.remove(2)
            }),
            r#"{ "b" :2 }"#
        );
        assert_eq!(
            object_edit(text, |e, _| {
                (0..3).for_each(|i| e.remove(i));
                e.push_front("\"x\":0")
            }),
            r#"{"x":0}"#
        );
    }

    #[test]
    fn setting_replaces_in_place_or_adds_at_either_end() {
        let text = r#"{"id":"","function":{"name":"f"}}"#;
        let out = object_edit(text, |e, m| {
            e.set_front(member(m, "index").map(|(i, _)| i), "index", "3");
            e.set_front(member(m, "id").map(|(i, _)| i), "id", quoted("call_1"));
            e.set_back(None, "extra_content", "{}");
        });
        assert_eq!(out, r#"{"index":3,"id":"call_1","function":{"name":"f"},"extra_content":{}}"#);
        assert_eq!(object_edit("{ }", |e, _| e.push_back("\"a\":1")), r#"{"a":1}"#);
        assert_eq!(object_edit("{}", |e, _| e.push_front("\"a\":1")), r#"{"a":1}"#);
        assert_eq!(object_edit(r#"{"a":1}"#, |_, _| {}), r#"{"a":1}"#);
    }

    #[test]
    fn array_elements_are_removed_with_their_commas() {
        let text = "[1, 2 ,3]";
        let run = |remove: &[usize]| {
            let raw: &RawValue = serde_json::from_str(text).unwrap();
            let els = elements(raw.get()).unwrap();
            let mut e = ContainerEdit::array(text.as_bytes(), raw, &els).unwrap();
            remove.iter().for_each(|&i| e.remove(i));
            let mut edits = Edits::new();
            e.emit(text.as_bytes(), &mut edits);
            String::from_utf8(edits.apply(text.as_bytes())).unwrap()
        };
        assert_eq!(run(&[0]), "[ 2 ,3]");
        assert_eq!(run(&[1]), "[1 ,3]");
        assert_eq!(run(&[2]), "[1, 2]");
        assert_eq!(run(&[0, 1, 2]), "[]");
        assert_eq!(run(&[]), text);
    }

    #[test]
    fn overlapping_edits_are_dropped_not_applied() {
        let mut edits = Edits::new();
        edits.replace(0..3, "x");
        edits.replace(1..4, "z");
        edits.insert(5, "y");
        assert_eq!(edits.apply(b"abcdef"), b"xdeyf");
    }
}
