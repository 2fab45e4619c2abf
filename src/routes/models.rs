//! `GET /v1/models`: the aliases and every configured `provider/model`, in OpenAI's list shape,
//! so `client.models.list()` works.

use serde::Serialize;
use worker::{Response, Result};

use crate::context::Ctx;
use crate::respond::{error_response, json_response};

#[derive(Serialize)]
struct Model<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'a str,
}

pub fn handle(ctx: &Ctx) -> Result<Response> {
    let config = match ctx.config() {
        Ok(c) => c,
        Err(err) => return error_response(&err, None),
    };
    let aliases =
        config.aliases.iter().map(|a| Model { id: &a.name, object: "model", created: 0, owned_by: "agent-gateway" });
    let models =
        config.models().into_iter().map(|t| Model { id: &t.id, object: "model", created: 0, owned_by: t.provider() });
    #[derive(Serialize)]
    struct List<'a> {
        object: &'static str,
        data: Vec<Model<'a>>,
    }
    let body = serde_json::to_string(&List { object: "list", data: aliases.chain(models).collect() })?;
    json_response(200, body)
}
