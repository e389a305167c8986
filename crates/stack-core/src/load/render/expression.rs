//! `{{ … }}` in stack-file strings (product.md §2), evaluated after parsing so
//! that errors keep the string's file:line:column.
//!
//! A string that is exactly one `{{ expression }}` keeps the expression's
//! type (`installed: "{{ values.app.enabled }}"` is a boolean, `replicas:
//! "{{ values.replicas }}"` a number); any other string renders to a string.

use minijinja::Environment;
use minijinja::value::Value as JinjaValue;
use serde_json::Value;

use crate::diagnostic::Span;
use crate::load::render::RenderError;
use crate::yaml::{Node, NodeKind};

/// Evaluates stack-file strings against one context.
pub struct Evaluator<'a> {
    env: &'a Environment<'static>,
    context: JinjaValue,
}

impl<'a> Evaluator<'a> {
    pub fn new(env: &'a Environment<'static>, context: JinjaValue) -> Self {
        Self { env, context }
    }

    /// Evaluate one string; `span` locates it for errors.
    pub fn string(&self, text: &str, span: &Span) -> Result<Value, RenderError> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(Value::String(text.to_string()));
        }
        let error = |error: minijinja::Error| RenderError::Expression {
            message: describe(&error),
            span: span.clone(),
        };
        if let Some(expression) = single_expression(text) {
            let compiled = self.env.compile_expression(expression).map_err(error)?;
            let value = compiled.eval(&self.context).map_err(error)?;
            if value.is_undefined() {
                return Err(RenderError::Expression {
                    message: format!("`{}` is undefined", expression.trim()),
                    span: span.clone(),
                });
            }
            return serde_json::to_value(&value).map_err(|e| RenderError::Expression {
                message: e.to_string(),
                span: span.clone(),
            });
        }
        let rendered = self.env.render_str(text, &self.context).map_err(error)?;
        Ok(Value::String(rendered))
    }

    /// Evaluate a string node to a string.
    pub fn text(&self, node: &Node) -> Result<String, RenderError> {
        let text = node.as_str().unwrap_or_default();
        match self.string(text, &node.span)? {
            Value::String(text) => Ok(text),
            other => Ok(other.to_string()),
        }
    }

    /// Evaluate every string of a tree, keeping its shape.
    pub fn tree(&self, node: &Node) -> Result<Value, RenderError> {
        Ok(match &node.kind {
            NodeKind::String(text) => self.string(text, &node.span)?,
            NodeKind::Sequence(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.tree(item))
                    .collect::<Result<_, _>>()?,
            ),
            NodeKind::Mapping(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| Ok((key.name.clone(), self.tree(value)?)))
                    .collect::<Result<_, RenderError>>()?,
            ),
            _ => node.to_value(),
        })
    }
}

/// `{{ expr }}` with nothing around it and no second tag inside.
fn single_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%")).then_some(inner)
}

/// A minijinja error without its debug dump: the kind and detail.
pub fn describe(error: &minijinja::Error) -> String {
    if error.kind() == minijinja::ErrorKind::OutOfFuel {
        return format!(
            "the template did not finish within {} million steps: a loop that does not end, or one over far too much?",
            crate::load::render::filters::FUEL / 1_000_000
        );
    }
    let mut message = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceFile;
    use serde_json::json;

    fn evaluate(text: &str) -> Result<Value, RenderError> {
        let env = crate::load::render::filters::environment(&crate::mask::Masks::default());
        let context =
            json!({"values": {"on": true, "n": 2, "host": "db"}, "environment": {"name": "dev"}});
        let evaluator = Evaluator::new(&env, JinjaValue::from(minijinja::value::Serde(&context)));
        let source = SourceFile::new("s.yaml", text);
        evaluator.string(text, &Span::new(&source, 0..text.len()))
    }

    #[test]
    fn single_expressions_keep_their_type() {
        assert_eq!(evaluate("{{ values.on }}").unwrap(), json!(true));
        assert_eq!(evaluate("{{ values.n }}").unwrap(), json!(2));
        assert_eq!(
            evaluate("postgres://{{ values.host }}:5432").unwrap(),
            json!("postgres://db:5432")
        );
        assert_eq!(
            evaluate("../environments/{{ environment.name }}.yaml").unwrap(),
            json!("../environments/dev.yaml")
        );
    }

    #[test]
    fn undefined_values_are_errors() {
        let error = evaluate("{{ values.hots }}").unwrap_err();
        assert_eq!(error.to_string(), "`values.hots` is undefined");
        assert!(evaluate("x-{{ values.hots }}").is_err());
    }
}
