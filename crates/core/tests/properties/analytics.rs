//! The logs API pages `/analytics` reads (`analytics::logs::read_page`), their amounts
//! (`usd_from_json_number`) and the pager that walks them: the Cloudflare API's answers, or
//! anything that answers in its place.

use gateway_core::analytics::logs::{read_page, usd_from_json_number, LogEntry, LogPage, PageInfo};
use gateway_core::analytics::pager::Pager;
use gateway_core::money::pricing::Usd;
use proptest::prelude::*;
use serde_json::json;

use crate::{cases, hostile_text};

const SECRET: &str = "cf-api-token-0123456789abcdef";

fn json_scalar() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        hostile_text(20).prop_map(|s| json!(s)),
    ]
}

/// A log row: mostly the documented shape, every field sometimes of another type.
fn row() -> impl Strategy<Value = serde_json::Value> {
    let date = prop_oneof![
        Just("2026-11-27T10:00:00Z".to_owned()),
        Just("2026-11-27T10:00:00.123+02:00".to_owned()),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})",
        hostile_text(30),
    ];
    let cost = prop_oneof![
        json_scalar(),
        "-?[0-9]{1,25}(\\.[0-9]{1,25})?([eE][+-]?[0-9]{1,4})?"
            .prop_map(|s| serde_json::from_str(&s).unwrap_or(json!(0))),
    ];
    let metadata = prop_oneof![
        Just(json!(null)),
        (hostile_text(20), hostile_text(20), json_scalar())
            .prop_map(|(a, r, n)| json!(json!({"agent": a, "repo": r, "attempt": n}).to_string())),
        (hostile_text(20), json_scalar()).prop_map(|(a, n)| json!({"agent": a, "attempt": n})),
        hostile_text(40).prop_map(|s| json!(s)),
    ];
    (
        date,
        hostile_text(12),
        hostile_text(12),
        json_scalar(),
        any::<bool>(),
        any::<bool>(),
        json_scalar(),
        json_scalar(),
        json_scalar(),
        cost,
        metadata,
    )
        .prop_map(|(created, provider, model, duration, success, cached, status, tin, tout, cost, metadata)| {
            json!({
                "id": "01ABC", "created_at": created, "provider": provider, "model": model,
                "duration": duration, "success": success, "cached": cached, "status_code": status,
                "tokens_in": tin, "tokens_out": tout, "cost": cost, "metadata": metadata,
            })
        })
}

fn page_body() -> impl Strategy<Value = String> {
    (prop::collection::vec(row(), 0..8), prop::option::of(any::<u64>()), prop::option::of(any::<bool>())).prop_map(
        |(rows, total, success)| {
            json!({
                "success": success, "errors": [], "messages": [], "result": rows,
                "result_info": {"page": 1, "per_page": 50, "count": rows.len(), "total_count": total},
            })
            .to_string()
        },
    )
}

/// `digits` with the decimal point moved `shift` places right, written without an exponent.
fn shifted_decimal(whole: &str, frac: &str, shift: i32) -> String {
    let digits = format!("{whole}{frac}");
    let point = whole.len() as i64 + i64::from(shift);
    let (int, fraction) = if point <= 0 {
        (String::from("0"), format!("{}{digits}", "0".repeat((-point) as usize)))
    } else if point as usize >= digits.len() {
        (format!("{digits}{}", "0".repeat(point as usize - digits.len())), String::new())
    } else {
        (digits[..point as usize].to_owned(), digits[point as usize..].to_owned())
    };
    if fraction.is_empty() {
        int
    } else {
        format!("{int}.{fraction}")
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// Any answer, any status: a page or a failure that says why, without a secret in it.
    #[test]
    fn arbitrary_answers_never_panic(status in prop_oneof![Just(200u16), Just(401), Just(429), Just(500), 100u16..600],
                                     retry in prop::option::of(hostile_text(12)), body in hostile_text(300)) {
        let planted = format!("{body}{SECRET}");
        for text in [&body, &planted] {
            if let Err(failure) = read_page(status, retry.as_deref(), text) {
                prop_assert!(!failure.describe(&[SECRET]).contains(SECRET));
                prop_assert!(!failure.to_error(&[SECRET]).to_json().contains(SECRET));
            }
        }
    }

    /// Pages of odd rows: read or refused whole, never a panic; what is read keeps every row.
    #[test]
    fn odd_pages_are_read_or_refused(body in page_body()) {
        let rows = serde_json::from_str::<serde_json::Value>(&body).unwrap()["result"].as_array().unwrap().len();
        if let Ok(page) = read_page(200, None, &body) {
            prop_assert_eq!(page.entries.len(), rows);
            for e in &page.entries {
                for label in [&e.agent, &e.repo].into_iter().flatten() {
                    prop_assert!(!label.chars().any(char::is_control));
                    prop_assert!(label.chars().count() <= 100);
                }
            }
        }
    }

    /// A cost written with an exponent is the same amount as written out in full, and a plain
    /// decimal of at most 12 places is exactly what `Usd::parse_dollars` reads.
    #[test]
    fn costs_are_exact_decimals(whole in "[0-9]{1,10}", frac in "[0-9]{0,10}", exp in -20i32..20) {
        let mantissa = if frac.is_empty() { whole.clone() } else { format!("{whole}.{frac}") };
        let plain = shifted_decimal(&whole, &frac, exp);
        prop_assert_eq!(usd_from_json_number(&format!("{mantissa}e{exp}")), usd_from_json_number(&plain), "{}", plain);
        let places = plain.split_once('.').map_or(0, |(_, f)| f.len());
        if places <= 12 {
            prop_assert_eq!(usd_from_json_number(&plain), Usd::parse_dollars(&plain));
        }
    }

    #[test]
    fn arbitrary_numbers_never_panic(text in prop_oneof![hostile_text(40), "-?[0-9]{0,45}\\.?[0-9]{0,45}([eE][+-]?[0-9]{1,12})?"]) {
        let _ = usd_from_json_number(&text);
    }

    /// The pager, fed whatever counts the API claims: it asks for pages in order, at most
    /// `parallel` at once, and ends.
    #[test]
    fn the_pager_always_ends(start in 1u32..5, totals in prop::collection::vec(prop::option::of(any::<u64>()), 1..40),
                             sizes in prop::collection::vec(0usize..=50, 1..40), parallel in 0u32..8) {
        let entry = LogEntry {
            id: String::new(), created_ms: 0, provider: "openai".into(), model: "gpt-4o".into(), duration_ms: None, success: true,
            cached: false, status: Some(200), tokens_in: Some(1), tokens_out: Some(1), cost: None, agent: None,
            repo: None, attempt: None, from_worker: true,
        };
        let mut pager = Pager::resume_at(start);
        let mut step = 0;
        while !pager.is_done() && step < 40 {
            let pages = pager.next_pages(parallel);
            prop_assert!(!pages.is_empty() && pages.len() <= parallel.max(1) as usize);
            prop_assert!(pages.windows(2).all(|w| w[1] == w[0] + 1));
            for number in pages {
                let info = PageInfo { total_count: totals[step % totals.len()], ..PageInfo::default() };
                let page = LogPage { entries: vec![entry.clone(); sizes[step % sizes.len()]], info };
                pager.accept(number, &page);
                step += 1;
                if pager.is_done() {
                    break;
                }
            }
        }
        prop_assert!(pager.is_done() || step >= 40);
        prop_assert!(pager.rows_read() <= 50 * u64::from(pager.pages_read()));
    }
}
