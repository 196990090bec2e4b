//! OpenAI's `tools` and `tool_choice` as Anthropic's.

use serde_json::{json, Value};

use crate::json::{self, Object};
use crate::Refusal;

pub(super) fn tools(value: &Value) -> Result<Vec<Value>, Refusal> {
    let list = json::list(value, "tools")?;
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let p = format!("tools[{i}]");
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(Refusal::new(
                    format!("{p}.type"),
                    "Only function tools can be translated.",
                ));
            }
            let f = t.get("function").unwrap_or(&Value::Null);
            let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                Refusal::new(format!("{p}.function.name"), "A tool needs a name.")
            })?;
            if f.get("strict") == Some(&Value::Bool(true)) {
                return Err(Refusal::new(
                    format!("{p}.function.strict"),
                    "Strict tool schemas cannot be translated for this model.",
                ));
            }
            let mut tool = Object::new();
            tool.insert("name".into(), json!(name));
            if let Some(d) = f.get("description").filter(|d| !d.is_null()) {
                tool.insert("description".into(), d.clone());
            }
            let schema = f
                .get("parameters")
                .filter(|s| !s.is_null())
                .cloned()
                .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
            tool.insert("input_schema".into(), schema);
            Ok(Value::Object(tool))
        })
        .collect()
}

pub(super) fn choice(value: &Value) -> Result<Option<Object>, Refusal> {
    let kind = |t: &str| {
        let mut o = Object::new();
        o.insert("type".into(), json!(t));
        Some(o)
    };
    Ok(match value {
        Value::Null => None,
        Value::String(s) => match s.as_str() {
            "auto" => kind("auto"),
            "none" => kind("none"),
            "required" => kind("any"),
            other => {
                return Err(Refusal::new(
                    "tool_choice",
                    format!("Unknown tool_choice `{other}`."),
                ))
            }
        },
        Value::Object(o) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| Refusal::new("tool_choice.function.name", "Name the function."))?;
            let mut out = kind("tool").unwrap_or_default();
            out.insert("name".into(), json!(name));
            Some(out)
        }
        _ => {
            return Err(Refusal::new(
                "tool_choice",
                "Must be a string or an object.",
            ))
        }
    })
}
