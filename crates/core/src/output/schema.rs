//! A request's JSON Schema, compiled into the form the validator walks — or the reason the
//! gateway cannot check it.
//!
//! The subset is the one OpenAI's strict mode allows, and what lies close to it:
//!
//! | checked | keywords |
//! |---|---|
//! | any | `type` (a name or an array of names), `enum`, `const`, `anyOf`, `allOf`, `$ref` to `#`, `#/$defs/…`, `#/definitions/…` or any local JSON pointer |
//! | objects | `properties`, `required`, `additionalProperties` (`false`, `true` or a schema) |
//! | arrays | `items` (one schema), `minItems`, `maxItems` |
//! | strings | `minLength`, `maxLength` (in characters) |
//! | numbers | `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (numbers), `multipleOf` |
//!
//! Annotations are ignored (`title`, `description`, `default`, `examples`, `$comment`,
//! `deprecated`, `readOnly`, `writeOnly`, `contentEncoding`, `contentMediaType`, Gemini's
//! `propertyOrdering`, `$id` and `$schema` at the root). `pattern` and `format` are not checked
//! (a regular-expression engine would cost the Worker's wasm more than the rest of this module):
//! the rest of the schema still is, and the warning says which were not.
//!
//! Anything else makes the schema unchecked, with the reason: another keyword (`oneOf`, `not`,
//! `patternProperties`, `prefixItems`, `uniqueItems`, … or one the gateway does not know: it
//! might assert what the gateway would not), a `$ref` outside the document, `$id` or `$anchor`
//! below the root, a schema that is not a valid one of the subset, and a schema past the bounds
//! below. Every bound is checked before the work it bounds.

use std::collections::BTreeMap;

use serde_json::{Number, Value};

/// The most bytes of schema compiled (OpenAI's own limits allow about this much).
pub const MAX_SCHEMA_BYTES: usize = 128 * 1024;
/// The most subschemas one schema may compile into.
pub const MAX_SCHEMA_NODES: usize = 5_000;
/// The deepest nesting of subschemas (OpenAI allows 10 levels of objects).
pub const MAX_SCHEMA_DEPTH: usize = 32;

pub(super) type NodeId = usize;

/// The JSON types `type` names, as bits.
pub(super) const NULL: u8 = 1;
pub(super) const BOOLEAN: u8 = 2;
pub(super) const OBJECT: u8 = 4;
pub(super) const ARRAY: u8 = 8;
pub(super) const NUMBER: u8 = 16;
pub(super) const INTEGER: u8 = 32;
pub(super) const STRING: u8 = 64;

/// One compiled subschema.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Node {
    /// `true`/`false` as a schema (`false`: nothing is valid).
    pub(super) always: Option<bool>,
    /// Allowed types; 0: any.
    pub(super) types: u8,
    pub(super) enumeration: Option<Vec<Value>>,
    pub(super) constant: Option<Value>,
    pub(super) properties: Vec<(String, NodeId)>,
    pub(super) required: Vec<String>,
    pub(super) additional: Option<NodeId>,
    pub(super) items: Option<NodeId>,
    pub(super) min_items: Option<u64>,
    pub(super) max_items: Option<u64>,
    pub(super) min_length: Option<u64>,
    pub(super) max_length: Option<u64>,
    pub(super) minimum: Option<Number>,
    pub(super) maximum: Option<Number>,
    pub(super) exclusive_minimum: Option<Number>,
    pub(super) exclusive_maximum: Option<Number>,
    pub(super) multiple_of: Option<Number>,
    pub(super) any_of: Vec<NodeId>,
    pub(super) all_of: Vec<NodeId>,
    pub(super) reference: Option<NodeId>,
}

/// A compiled schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub(super) nodes: Vec<Node>,
    /// Keywords present and not checked (`pattern`, `format`), for the warning.
    pub(super) unchecked: Vec<&'static str>,
}

impl Schema {
    /// Compiles `schema`; `Err` says why the gateway cannot check it.
    pub fn compile(schema: &Value) -> Result<Schema, String> {
        let mut c = Compiler {
            root: schema,
            nodes: Vec::new(),
            by_pointer: BTreeMap::new(),
            pending: Vec::new(),
            unchecked: Vec::new(),
        };
        if let Value::Object(top) = schema {
            // The root may name its dialect; one whose keywords mean other things is not checked.
            if let Some(dialect) = top.get("$schema") {
                let known = dialect.as_str().is_some_and(|d| {
                    ["draft/2020-12/schema", "draft/2019-09/schema", "draft-07/schema", "draft-06/schema"]
                        .iter()
                        .any(|k| d.trim_end_matches('#').ends_with(k))
                });
                if !known {
                    return Err(format!("its `$schema` ({}) is a dialect the gateway does not check", short(dialect)));
                }
            }
        }
        c.node(schema, String::new(), 0, true)?;
        while let Some((from, pointer)) = c.pending.pop() {
            let target = match c.by_pointer.get(&pointer) {
                Some(&id) => id,
                None => {
                    let at =
                        c.root.pointer(&pointer).ok_or_else(|| format!("its `$ref` `#{pointer}` points at nothing"))?;
                    c.node(at, pointer, 0, false)?
                }
            };
            c.nodes[from].reference = Some(target);
        }
        c.refuse_cycles_without_descent()?;
        Ok(Schema { nodes: c.nodes, unchecked: c.unchecked })
    }

    /// The keywords present and not checked, if any.
    pub fn unchecked_keywords(&self) -> &[&'static str] {
        &self.unchecked
    }
}

struct Compiler<'a> {
    root: &'a Value,
    nodes: Vec<Node>,
    /// Every compiled subschema by its JSON pointer from the root, so a `$ref` to one is the
    /// same node (and a reference to an ancestor is a cycle through the instance, not a loop).
    by_pointer: BTreeMap<String, NodeId>,
    /// `$ref`s to resolve once the tree is compiled: (the referring node, its pointer).
    pending: Vec<(NodeId, String)>,
    unchecked: Vec<&'static str>,
}

impl Compiler<'_> {
    fn node(&mut self, schema: &Value, pointer: String, depth: usize, root: bool) -> Result<NodeId, String> {
        if let Some(&id) = self.by_pointer.get(&pointer) {
            return Ok(id);
        }
        if depth > MAX_SCHEMA_DEPTH {
            return Err(format!("it nests deeper than {MAX_SCHEMA_DEPTH} levels"));
        }
        if self.nodes.len() >= MAX_SCHEMA_NODES {
            return Err(format!("it has more than {MAX_SCHEMA_NODES} subschemas"));
        }
        let id = self.nodes.len();
        self.nodes.push(Node::default());
        self.by_pointer.insert(pointer.clone(), id);
        let object = match schema {
            Value::Bool(b) => {
                self.nodes[id].always = Some(*b);
                return Ok(id);
            }
            Value::Object(object) => object,
            other => return Err(format!("`#{pointer}` is not a schema (an object or a boolean): {}", short(other))),
        };
        let mut node = Node::default();
        for (key, value) in object {
            let here = |k: &str| format!("{pointer}/{}", escape(k));
            let bad = |what: &str| format!("`{}` must be {what}", at(&pointer, key));
            match key.as_str() {
                "type" => node.types = types(value).ok_or_else(|| bad("a type name or an array of them"))?,
                "enum" => node.enumeration = Some(value.as_array().ok_or_else(|| bad("an array"))?.clone()),
                "const" => node.constant = Some(value.clone()),
                "properties" => {
                    let props = value.as_object().ok_or_else(|| bad("an object"))?;
                    for (name, sub) in props {
                        let child = self.node(sub, format!("{}/{}", here(key), escape(name)), depth + 1, false)?;
                        node.properties.push((name.clone(), child));
                    }
                }
                "required" => node.required = strings(value).ok_or_else(|| bad("an array of strings"))?,
                "additionalProperties" => node.additional = Some(self.node(value, here(key), depth + 1, false)?),
                "items" if value.is_array() => {
                    return Err(format!("`{}` as an array (tuples) is not checked", at(&pointer, key)))
                }
                "items" => node.items = Some(self.node(value, here(key), depth + 1, false)?),
                "anyOf" | "allOf" => {
                    let list = value.as_array().filter(|l| !l.is_empty()).ok_or_else(|| bad("a non-empty array"))?;
                    let mut ids = Vec::with_capacity(list.len());
                    for (i, sub) in list.iter().enumerate() {
                        ids.push(self.node(sub, format!("{}/{i}", here(key)), depth + 1, false)?);
                    }
                    if key == "anyOf" {
                        node.any_of = ids;
                    } else {
                        node.all_of = ids;
                    }
                }
                "minItems" => node.min_items = Some(count(value).ok_or_else(|| bad("a non-negative integer"))?),
                "maxItems" => node.max_items = Some(count(value).ok_or_else(|| bad("a non-negative integer"))?),
                "minLength" => node.min_length = Some(count(value).ok_or_else(|| bad("a non-negative integer"))?),
                "maxLength" => node.max_length = Some(count(value).ok_or_else(|| bad("a non-negative integer"))?),
                "minimum" => node.minimum = Some(number(value).ok_or_else(|| bad("a number"))?),
                "maximum" => node.maximum = Some(number(value).ok_or_else(|| bad("a number"))?),
                "exclusiveMinimum" => node.exclusive_minimum = Some(number(value).ok_or_else(|| bad("a number"))?),
                "exclusiveMaximum" => node.exclusive_maximum = Some(number(value).ok_or_else(|| bad("a number"))?),
                "multipleOf" => {
                    let m = number(value).filter(|n| n.as_f64().is_some_and(|f| f > 0.0));
                    node.multiple_of = Some(m.ok_or_else(|| bad("a number above zero"))?);
                }
                "$ref" => {
                    let target = value.as_str().ok_or_else(|| bad("a string"))?;
                    let local = target.strip_prefix('#').filter(|p| p.is_empty() || p.starts_with('/'));
                    let Some(local) = local.filter(|p| !p.contains('%')) else {
                        return Err(format!("its `$ref` `{}` is not a reference inside the schema", short(value)));
                    };
                    self.pending.push((id, local.to_owned()));
                }
                // Containers of subschemas: compiled when referenced.
                "$defs" | "definitions" => {}
                "pattern" | "format" => self.note_unchecked(if key == "pattern" { "pattern" } else { "format" }),
                "$id" | "$schema" if root => {}
                "title" | "description" | "default" | "examples" | "$comment" | "deprecated" | "readOnly"
                | "writeOnly" | "contentEncoding" | "contentMediaType" | "propertyOrdering" => {}
                other => return Err(format!("keyword `{}` is not one the gateway checks", at(&pointer, other))),
            }
        }
        // Sorted, so the validator finds an answer's keys among them by binary search.
        node.properties.sort_by(|a, b| a.0.cmp(&b.0));
        self.nodes[id] = node;
        Ok(id)
    }

    fn note_unchecked(&mut self, keyword: &'static str) {
        if !self.unchecked.contains(&keyword) {
            self.unchecked.push(keyword);
        }
    }

    /// Refuses a schema that can reach itself through `$ref`, `anyOf` or `allOf` without
    /// descending into the instance (`{"$ref": "#"}` at the root): validating it would never end.
    fn refuse_cycles_without_descent(&self) -> Result<(), String> {
        // Iterative depth-first search over the "same instance" edges: 0 unseen, 1 on the path, 2 done.
        let mut state = vec![0u8; self.nodes.len()];
        for start in 0..self.nodes.len() {
            if state[start] != 0 {
                continue;
            }
            let mut stack: Vec<(NodeId, usize)> = vec![(start, 0)];
            state[start] = 1;
            while let Some(&(node, next)) = stack.last() {
                match same_instance(&self.nodes[node]).get(next).copied() {
                    Some(to) => {
                        if let Some(top) = stack.last_mut() {
                            top.1 += 1;
                        }
                        match state[to] {
                            1 => return Err("it refers to itself without descending into the answer".to_owned()),
                            0 => {
                                state[to] = 1;
                                stack.push((to, 0));
                            }
                            _ => {}
                        }
                    }
                    None => {
                        state[node] = 2;
                        stack.pop();
                    }
                }
            }
        }
        Ok(())
    }
}

/// The subschemas that apply to the same instance as `node`.
fn same_instance(node: &Node) -> Vec<NodeId> {
    node.reference.iter().chain(&node.any_of).chain(&node.all_of).copied().collect()
}

fn types(value: &Value) -> Option<u8> {
    let one = |name: &str| match name {
        "null" => Some(NULL),
        "boolean" => Some(BOOLEAN),
        "object" => Some(OBJECT),
        "array" => Some(ARRAY),
        "number" => Some(NUMBER),
        "integer" => Some(INTEGER),
        "string" => Some(STRING),
        _ => None,
    };
    match value {
        Value::String(name) => one(name),
        Value::Array(names) if !names.is_empty() => {
            names.iter().try_fold(0u8, |bits, n| n.as_str().and_then(one).map(|b| bits | b))
        }
        _ => None,
    }
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value.as_array()?.iter().map(|v| v.as_str().map(str::to_owned)).collect()
}

/// A non-negative integer (`2.0` too, as JSON Schema reads it).
fn count(value: &Value) -> Option<u64> {
    let n = value.as_number()?;
    n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19).map(|f| f as u64))
}

fn number(value: &Value) -> Option<Number> {
    value.as_number().cloned()
}

/// A JSON pointer token: `~` and `/` escaped.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Where a keyword is, for messages: `#/properties/a/type`.
fn at(pointer: &str, key: &str) -> String {
    format!("#{pointer}/{}", key.chars().take(64).collect::<String>())
}

/// A value shortened for a message.
fn short(value: &impl std::fmt::Display) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn why(schema: Value) -> String {
        Schema::compile(&schema).unwrap_err()
    }

    #[test]
    fn the_subset_compiles() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "labels",
            "type": "object",
            "properties": {
                "labels": {"type": "array", "items": {"$ref": "#/$defs/label"}, "minItems": 1},
                "reason": {"type": ["string", "null"], "maxLength": 200, "pattern": "^[a-z]"},
                "score": {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "multipleOf": 0.25},
                "tree": {"$ref": "#/definitions/tree"}
            },
            "required": ["labels"],
            "additionalProperties": false,
            "$defs": {"label": {"enum": ["bug", "feature"]}},
            "definitions": {"tree": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/definitions/tree"}}}}}
        });
        let s = Schema::compile(&schema).unwrap();
        assert_eq!(s.unchecked_keywords(), ["pattern"]);
        assert!(s.nodes.len() >= 8);
    }

    #[test]
    fn what_is_not_checked_says_why() {
        assert!(why(json!({"oneOf": [{"type": "string"}]})).contains("keyword `#/oneOf`"));
        assert!(why(json!({"properties": {"a": {"nullable": true}}})).contains("`#/properties/a/nullable`"));
        assert!(why(json!({"$ref": "https://example.com/s.json"})).contains("not a reference inside"));
        assert!(why(json!({"$ref": "#/$defs/missing"})).contains("points at nothing"));
        assert!(why(json!({"type": "text"})).contains("must be a type name"));
        assert!(why(json!({"required": "a"})).contains("array of strings"));
        assert!(why(json!({"multipleOf": 0})).contains("above zero"));
        assert!(why(json!({"items": [{}, {}]})).contains("tuples"));
        assert!(why(json!({"properties": {"a": {"$id": "x"}}})).contains("/$id`"));
        assert!(why(json!({"$schema": "http://json-schema.org/draft-04/schema#"})).contains("dialect"));
        assert!(why(json!(5)).contains("not a schema"));
        assert!(why(json!({"anyOf": []})).contains("non-empty"));
    }

    #[test]
    fn references_that_never_descend_are_refused_and_those_that_do_are_fine() {
        assert!(why(json!({"$ref": "#"})).contains("itself"));
        assert!(why(
            json!({"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}, {"type": "string"}]}}, "$ref": "#/$defs/a"})
        )
        .contains("itself"));
        assert!(why(
            json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"})
        )
        .contains("itself"));
        assert!(Schema::compile(&json!({"type": "array", "items": {"$ref": "#"}})).is_ok());
        assert!(Schema::compile(&json!({"properties": {"next": {"$ref": "#"}}})).is_ok());
        // A long chain of references is compiled without deep recursion.
        let mut defs = serde_json::Map::new();
        for i in 0..3_000 {
            defs.insert(format!("d{i}"), json!({"$ref": format!("#/$defs/d{}", i + 1)}));
        }
        defs.insert("d3000".into(), json!({"type": "string"}));
        assert!(Schema::compile(&json!({"$defs": defs, "$ref": "#/$defs/d0"})).is_ok());
    }

    #[test]
    fn bounds_are_kept() {
        let mut deep = json!({"type": "string"});
        for _ in 0..MAX_SCHEMA_DEPTH + 1 {
            deep = json!({"type": "object", "properties": {"a": deep}});
        }
        assert!(why(deep).contains("deeper"));
        let wide: serde_json::Map<String, Value> =
            (0..MAX_SCHEMA_NODES).map(|i| (format!("p{i}"), json!({}))).collect();
        assert!(why(json!({"properties": wide})).contains("more than"));
    }
}
