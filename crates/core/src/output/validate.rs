//! Checking an answer against a compiled [`Schema`], within bounds of depth and work: a schema
//! whose references chain deeper than [`MAX_CHECK_DEPTH`], or an answer and schema whose check
//! takes more than [`MAX_CHECK_STEPS`] steps, is not checked (and says so) rather than checked
//! for ever.

use std::cmp::Ordering;
use std::fmt::Write;

use serde_json::{Number, Value};

use super::schema::{Node, NodeId, Schema, ARRAY, BOOLEAN, INTEGER, NULL, NUMBER, OBJECT, STRING};

/// The deepest the check goes: the answer's nesting and chains of references together.
pub const MAX_CHECK_DEPTH: usize = 256;
/// The most subschema visits (and enum comparisons) one check makes.
pub const MAX_CHECK_STEPS: u64 = 1_000_000;

/// Why a check did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stop {
    /// The answer breaks the schema: where and how.
    Invalid(String),
    /// The check went past its bounds.
    TooCostly(String),
}

impl Schema {
    /// Checks `value` against the schema (its first node is the root).
    pub(super) fn check(&self, value: &Value) -> Result<(), Stop> {
        let mut walk = Walk { schema: self, steps: 0, path: Vec::new() };
        walk.node(0, value, 0)
    }
}

enum Segment<'v> {
    Key(&'v str),
    Index(usize),
}

struct Walk<'s, 'v> {
    schema: &'s Schema,
    steps: u64,
    path: Vec<Segment<'v>>,
}

impl<'v> Walk<'_, 'v> {
    fn node(&mut self, id: NodeId, value: &'v Value, depth: usize) -> Result<(), Stop> {
        self.steps += 1;
        if self.steps > MAX_CHECK_STEPS {
            return Err(Stop::TooCostly(format!("checking it takes more than {MAX_CHECK_STEPS} steps")));
        }
        if depth > MAX_CHECK_DEPTH {
            return Err(Stop::TooCostly(format!("its check goes deeper than {MAX_CHECK_DEPTH} levels")));
        }
        let schema = self.schema;
        let Some(node) = schema.nodes.get(id) else { return Ok(()) };
        match node.always {
            Some(true) => return Ok(()),
            Some(false) => return Err(self.invalid("no value is allowed here")),
            None => {}
        }
        if let Some(target) = node.reference {
            self.node(target, value, depth + 1)?;
        }
        if node.types != 0 && !has_type(node.types, value) {
            return Err(self.invalid(&format!("expected {}, got {}", type_names(node.types), kind(value))));
        }
        if let Some(allowed) = &node.enumeration {
            self.steps = self.steps.saturating_add(allowed.len() as u64);
            if !allowed.iter().any(|a| equal(a, value)) {
                return Err(self.invalid("is not one of the values its `enum` allows"));
            }
        }
        if let Some(constant) = &node.constant {
            if !equal(constant, value) {
                return Err(self.invalid("is not the value its `const` requires"));
            }
        }
        match value {
            Value::String(s) => self.string(node, s)?,
            Value::Number(n) => self.number(node, n)?,
            Value::Array(items) => self.array(node, items, depth)?,
            Value::Object(object) => self.object(node, object, depth)?,
            Value::Null | Value::Bool(_) => {}
        }
        for &sub in &node.all_of {
            self.node(sub, value, depth + 1)?;
        }
        if !node.any_of.is_empty() {
            let mut matched = false;
            for &sub in &node.any_of {
                match self.node(sub, value, depth + 1) {
                    Ok(()) => {
                        matched = true;
                        break;
                    }
                    Err(Stop::Invalid(_)) => {}
                    Err(too_costly) => return Err(too_costly),
                }
            }
            if !matched {
                return Err(self.invalid(&format!("matches none of the {} schemas of its `anyOf`", node.any_of.len())));
            }
        }
        Ok(())
    }

    fn string(&self, node: &Node, s: &str) -> Result<(), Stop> {
        if node.min_length.is_none() && node.max_length.is_none() {
            return Ok(());
        }
        let length = s.chars().count() as u64;
        if node.min_length.is_some_and(|min| length < min) {
            return Err(self.invalid(&format!("is shorter than {} characters", node.min_length.unwrap_or(0))));
        }
        if node.max_length.is_some_and(|max| length > max) {
            return Err(self.invalid(&format!("is longer than {} characters", node.max_length.unwrap_or(0))));
        }
        Ok(())
    }

    fn number(&self, node: &Node, n: &Number) -> Result<(), Stop> {
        let bound = |limit: &Option<Number>, fails: fn(Ordering) -> bool, says: &str| match limit {
            Some(limit) if compare(n, limit).is_none_or(fails) => Err(self.invalid(&format!("{says} {limit}"))),
            _ => Ok(()),
        };
        bound(&node.minimum, |o| o == Ordering::Less, "is less than")?;
        bound(&node.maximum, |o| o == Ordering::Greater, "is more than")?;
        bound(&node.exclusive_minimum, |o| o != Ordering::Greater, "is not more than")?;
        bound(&node.exclusive_maximum, |o| o != Ordering::Less, "is not less than")?;
        match &node.multiple_of {
            Some(m) if !multiple(n, m) => Err(self.invalid(&format!("is not a multiple of {m}"))),
            _ => Ok(()),
        }
    }

    fn array(&mut self, node: &Node, items: &'v [Value], depth: usize) -> Result<(), Stop> {
        let len = items.len() as u64;
        if node.min_items.is_some_and(|min| len < min) {
            return Err(self.invalid(&format!("has fewer than {} items", node.min_items.unwrap_or(0))));
        }
        if node.max_items.is_some_and(|max| len > max) {
            return Err(self.invalid(&format!("has more than {} items", node.max_items.unwrap_or(0))));
        }
        if let Some(each) = node.items {
            for (i, item) in items.iter().enumerate() {
                self.path.push(Segment::Index(i));
                let checked = self.node(each, item, depth + 1);
                self.path.pop();
                checked?;
            }
        }
        Ok(())
    }

    fn object(&mut self, node: &Node, object: &'v serde_json::Map<String, Value>, depth: usize) -> Result<(), Stop> {
        for name in &node.required {
            if !object.contains_key(name) {
                return Err(self.invalid(&format!("misses the required property `{}`", clip(name))));
            }
        }
        for (key, value) in object {
            let declared = node.properties.binary_search_by(|(name, _)| name.as_str().cmp(key));
            let sub = match declared {
                Ok(i) => Some(node.properties[i].1),
                Err(_) => node.additional,
            };
            let Some(sub) = sub else { continue };
            if declared.is_err() && self.schema.nodes.get(sub).is_some_and(|n| n.always == Some(false)) {
                return Err(self.invalid(&format!("has the property `{}`, which its schema does not allow", clip(key))));
            }
            self.path.push(Segment::Key(key));
            let checked = self.node(sub, value, depth + 1);
            self.path.pop();
            checked?;
        }
        Ok(())
    }

    /// The failure at the current place: `` `$.labels[0]` is not … ``.
    fn invalid(&self, what: &str) -> Stop {
        let mut at = String::from("$");
        for segment in &self.path {
            match segment {
                Segment::Index(i) => {
                    let _ = write!(at, "[{i}]");
                }
                Segment::Key(k) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                    let _ = write!(at, ".{}", clip(k));
                }
                Segment::Key(k) => {
                    let _ = write!(at, "[{}]", serde_json::to_string(&clip(k)).unwrap_or_default());
                }
            }
            if at.len() > 200 {
                at.push('…');
                break;
            }
        }
        Stop::Invalid(format!("`{at}` {what}"))
    }
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

fn is_integer(n: &Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

fn has_type(types: u8, value: &Value) -> bool {
    let bits = match value {
        Value::Null => NULL,
        Value::Bool(_) => BOOLEAN,
        Value::Object(_) => OBJECT,
        Value::Array(_) => ARRAY,
        Value::String(_) => STRING,
        Value::Number(n) if is_integer(n) => NUMBER | INTEGER,
        Value::Number(_) => NUMBER,
    };
    types & bits != 0
}

fn type_names(types: u8) -> String {
    let names: Vec<&str> = [
        (NULL, "null"),
        (BOOLEAN, "a boolean"),
        (OBJECT, "an object"),
        (ARRAY, "an array"),
        (NUMBER, "a number"),
        (INTEGER, "an integer"),
        (STRING, "a string"),
    ]
    .iter()
    .filter(|(bit, _)| types & bit != 0)
    .map(|(_, name)| *name)
    .collect();
    names.join(" or ")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Object(_) => "an object",
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(n) if is_integer(n) => "an integer",
        Value::Number(_) => "a number",
    }
}

fn as_i128(n: &Number) -> Option<i128> {
    n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
}

/// Numbers compared by value (`1` equals `1.0`); integers exactly.
fn compare(a: &Number, b: &Number) -> Option<Ordering> {
    match (as_i128(a), as_i128(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// `n` is a whole multiple of `m` (`m` > 0): exactly for integers, for other numbers when their
/// quotient is whole.
fn multiple(n: &Number, m: &Number) -> bool {
    if let (Some(x), Some(y)) = (as_i128(n), as_i128(m)) {
        return y != 0 && x % y == 0;
    }
    match (n.as_f64(), m.as_f64()) {
        (Some(x), Some(y)) if y > 0.0 => {
            let q = x / y;
            q.is_finite() && q.fract() == 0.0
        }
        _ => false,
    }
}

/// JSON equality as JSON Schema means it: numbers by value, objects whatever their key order.
pub(super) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(schema: Value, value: Value) -> Result<(), Stop> {
        Schema::compile(&schema).unwrap().check(&value)
    }

    fn says(schema: Value, value: Value) -> String {
        match check(schema, value) {
            Err(Stop::Invalid(why)) => why,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn each_keyword_holds_and_names_where_it_failed() {
        let labels = json!({
            "type": "object",
            "properties": {"labels": {"type": "array", "items": {"enum": ["bug", "feature"]}, "maxItems": 2}},
            "required": ["labels"],
            "additionalProperties": false
        });
        assert_eq!(check(labels.clone(), json!({"labels": ["bug"]})), Ok(()));
        assert_eq!(says(labels.clone(), json!({})), "`$` misses the required property `labels`");
        assert_eq!(
            says(labels.clone(), json!({"labels": ["bug", "x"]})),
            "`$.labels[1]` is not one of the values its `enum` allows"
        );
        assert_eq!(
            says(labels.clone(), json!({"labels": [], "extra": 1})),
            "`$` has the property `extra`, which its schema does not allow"
        );
        assert_eq!(says(labels.clone(), json!({"labels": "bug"})), "`$.labels` expected an array, got a string");
        assert_eq!(says(labels, json!({"labels": ["bug", "bug", "bug"]})), "`$.labels` has more than 2 items");
        assert_eq!(says(json!({"type": "integer"}), json!(1.5)), "`$` expected an integer, got a number");
        assert_eq!(check(json!({"type": "integer"}), json!(2.0)), Ok(()));
        assert_eq!(check(json!({"type": ["string", "null"]}), json!(null)), Ok(()));
        assert_eq!(says(json!({"minLength": 2}), json!("é")), "`$` is shorter than 2 characters");
        assert_eq!(check(json!({"maxLength": 1}), json!("é")), Ok(()));
        assert_eq!(says(json!({"minimum": 1}), json!(0.5)), "`$` is less than 1");
        assert_eq!(says(json!({"exclusiveMaximum": 1}), json!(1)), "`$` is not less than 1");
        assert_eq!(check(json!({"exclusiveMinimum": 0, "maximum": 1}), json!(1.0)), Ok(()));
        assert_eq!(says(json!({"multipleOf": 0.5}), json!(1.25)), "`$` is not a multiple of 0.5");
        assert_eq!(check(json!({"multipleOf": 3}), json!(-9)), Ok(()));
        assert_eq!(check(json!({"const": {"a": [1, 2.0]}}), json!({"a": [1.0, 2]})), Ok(()));
        assert_eq!(
            says(json!({"anyOf": [{"type": "string"}, {"minimum": 5}]}), json!(3)),
            "`$` matches none of the 2 schemas of its `anyOf`"
        );
        assert_eq!(says(json!({"allOf": [{"minimum": 1}, {"maximum": 2}]}), json!(3)), "`$` is more than 2");
        assert_eq!(
            says(json!({"properties": {"a b": false}}), json!({"a b": 1})),
            "`$[\"a b\"]` no value is allowed here"
        );
    }

    #[test]
    fn references_recurse_through_the_answer() {
        let tree = json!({
            "$defs": {"node": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, "required": ["kids"]}},
            "$ref": "#/$defs/node"
        });
        assert_eq!(check(tree.clone(), json!({"kids": [{"kids": []}, {"kids": [{"kids": []}]}]})), Ok(()));
        assert_eq!(
            says(tree, json!({"kids": [{"kids": [{}]}]})),
            "`$.kids[0].kids[0]` misses the required property `kids`"
        );
        let list = json!({"type": ["object", "null"], "properties": {"next": {"$ref": "#"}}});
        assert_eq!(check(list, json!({"next": {"next": {"next": null}}})), Ok(()));
    }

    #[test]
    fn work_is_bounded() {
        // A chain of references longer than the check goes.
        let mut defs = serde_json::Map::new();
        for i in 0..1_000 {
            defs.insert(format!("d{i}"), json!({"$ref": format!("#/$defs/d{}", i + 1)}));
        }
        defs.insert("d1000".into(), json!({"type": "string"}));
        let chain = json!({"$defs": defs, "$ref": "#/$defs/d0"});
        assert!(matches!(check(chain, json!("x")), Err(Stop::TooCostly(_))));
        // Levels of anyOf over references whose branches all fail at the bottom: 2^40 visits
        // without the step bound, from a schema of 121 nodes.
        let mut defs = serde_json::Map::new();
        defs.insert("l0".into(), json!({"type": "string"}));
        for i in 0..40 {
            let below = format!("#/$defs/l{i}");
            defs.insert(format!("l{}", i + 1), json!({"anyOf": [{"$ref": below, "minLength": 5}, {"$ref": below}]}));
        }
        let fan = json!({"$defs": defs, "$ref": "#/$defs/l40"});
        assert!(matches!(check(fan, json!(7)), Err(Stop::TooCostly(_))));
    }
}
