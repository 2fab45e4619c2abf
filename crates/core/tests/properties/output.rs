//! `output`: the gateway's JSON Schema validator against the reference implementation (the
//! `jsonschema` crate) on schemas and answers generated within the subset it checks; and every
//! `response_format`, schema and answer the gateway is handed, however hostile, read without a
//! panic and within its bounds.

use gateway_core::output::{AnswerContent, OutputContract, Verdict};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::{cases, hostile_text};

const KEYS: [&str; 5] = ["a", "b", "c", "v", "next"];

/// Small JSON values, so that generated answers often meet generated schemas.
fn instance() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..12).prop_map(|n| json!(n)),
        prop::sample::select(vec![0.5, 1.5, 2.0, 2.25, -0.75, 3.0, 10.5]).prop_map(|f| json!(f)),
        "[ab]{0,4}".prop_map(Value::String),
        Just(json!("é")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Map<_, _>>())),
        ]
    })
}

/// Schemas of the subset the gateway checks: a subschema, or one reached through a definition,
/// or a list that refers to itself (the root) as it descends.
fn schema() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => subschema(),
        1 => subschema().prop_map(|s| json!({"$defs": {"d": s}, "$ref": "#/$defs/d"})),
        1 => subschema().prop_map(|s| json!({"type": ["object", "null"], "properties": {"v": s, "next": {"$ref": "#"}}})),
    ]
}

fn subschema() -> impl Strategy<Value = Value> {
    let type_name = prop::sample::select(vec!["null", "boolean", "object", "array", "number", "integer", "string"]);
    let leaf = prop_oneof![
        type_name.clone().prop_map(|t| json!({ "type": t })),
        prop::collection::btree_set(type_name, 1..3).prop_map(|ts| json!({ "type": ts })),
        prop::collection::vec(instance(), 1..4).prop_map(|values| json!({ "enum": values })),
        instance().prop_map(|v| json!({ "const": v })),
        (0u64..3, 0u64..5)
            .prop_map(|(min, extra)| json!({"type": "string", "minLength": min, "maxLength": min + extra})),
        (
            prop::sample::select(vec!["number", "integer"]),
            -3i64..4,
            0i64..8,
            prop::sample::select(vec![
                None,
                Some(json!(1)),
                Some(json!(2)),
                Some(json!(3)),
                Some(json!(0.5)),
                Some(json!(0.25))
            ]),
            any::<bool>(),
        )
            .prop_map(|(t, lo, span, multiple, exclusive)| {
                let mut s = json!({"type": t});
                if exclusive {
                    s["exclusiveMinimum"] = json!(lo);
                    s["exclusiveMaximum"] = json!(lo + span);
                } else {
                    s["minimum"] = json!(lo);
                    s["maximum"] = json!(lo as f64 + span as f64 + 0.5);
                }
                if let Some(m) = multiple {
                    s["multipleOf"] = m;
                }
                s
            }),
        any::<bool>().prop_map(Value::Bool),
        Just(json!({})),
    ];
    leaf.prop_recursive(3, 32, 4, |inner| {
        prop_oneof![
            (
                prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner.clone()), 0..4),
                prop::collection::vec(prop::sample::select(KEYS.to_vec()), 0..3),
                prop_oneof![
                    Just(None),
                    Just(Some(json!(false))),
                    Just(Some(json!(true))),
                    inner.clone().prop_map(Some)
                ],
            )
                .prop_map(|(props, required, additional)| {
                    let properties: Map<String, Value> = props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                    let mut required: Vec<&str> = required;
                    required.sort_unstable();
                    required.dedup();
                    let mut s = json!({"type": "object", "properties": properties, "required": required});
                    if let Some(a) = additional {
                        s["additionalProperties"] = a;
                    }
                    s
                }),
            (inner.clone(), 0u64..2, 0u64..3).prop_map(|(items, min, extra)| {
                json!({"type": "array", "items": items, "minItems": min, "maxItems": min + extra})
            }),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|s| json!({ "anyOf": s })),
            prop::collection::vec(inner, 1..3).prop_map(|s| json!({ "allOf": s })),
        ]
    })
}

fn verdict(contract: &OutputContract, value: &Value) -> Verdict {
    let text = value.to_string();
    contract.check(&AnswerContent { content: Some(text.into()), ..AnswerContent::default() })
}

proptest! {
    #![proptest_config(cases(512))]

    /// Within the subset, the gateway's validator and the reference agree on every answer.
    #[test]
    fn the_validator_agrees_with_the_reference(schema in schema(), answers in prop::collection::vec(instance(), 1..6)) {
        let format = json!({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}).to_string();
        let contract = OutputContract::from_response_format(&format).unwrap().unwrap();
        prop_assert!(matches!(contract, OutputContract::Schema(_)), "{} was not compiled: {:?}", schema, contract);
        let reference = jsonschema::validator_for(&schema).unwrap();
        for answer in &answers {
            let ours = verdict(&contract, answer);
            prop_assert!(!matches!(ours, Verdict::Unchecked(_)), "{ours:?}");
            prop_assert_eq!(ours == Verdict::Valid, reference.is_valid(answer), "schema {} answer {}: {:?}", schema, answer, ours);
        }
    }

    /// Whatever `response_format` arrives, it is read into a contract, or a 400, without a panic.
    #[test]
    fn any_response_format_is_read_or_refused(text in hostile_text(300)) {
        let _ = OutputContract::from_response_format(&text);
        let wrapped = format!(r#"{{"type":"json_schema","json_schema":{{"name":"x","schema":{text}}}}}"#);
        let _ = OutputContract::from_response_format(&wrapped);
    }

    /// Any JSON value as a schema, and any answer: a contract (checked or JSON only), then a
    /// verdict, without a panic.
    #[test]
    fn any_schema_and_answer_come_to_a_verdict(schema in instance(), answer in hostile_text(200), value in instance()) {
        let format = json!({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}).to_string();
        if let Ok(Some(contract)) = OutputContract::from_response_format(&format) {
            let _ = contract.check(&AnswerContent { content: Some(answer.into()), ..AnswerContent::default() });
            let _ = verdict(&contract, &value);
        }
    }
}

/// Schemas past the bounds, and references that never end, are not checked (the request goes
/// on, with a warning), and never hang.
#[test]
fn huge_deep_and_self_referring_schemas_are_bounded() {
    let mut deep = json!({"type": "string"});
    for _ in 0..100 {
        deep = json!({"anyOf": [deep]});
    }
    let mut wide = Map::new();
    for i in 0..20_000 {
        wide.insert(format!("p{i}"), json!({"type": "string"}));
    }
    for schema in [deep, json!({"properties": wide}), json!({"$ref": "#"}), json!({"allOf": [{"$ref": "#"}]})] {
        let format = json!({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}).to_string();
        let contract = OutputContract::from_response_format(&format).unwrap().unwrap();
        assert!(matches!(contract, OutputContract::JsonOnly { .. }), "{contract:?}");
        assert!(contract.warning().is_some());
    }
}
