//! Kubernetes LabelSelector semantics (pure, no config types), shared by
//! `nodeSelector` (render.rs), `advertise[].services.selector` (its check
//! in the config and its use in advertise.rs).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Kubernetes LabelSelector semantics: every `matchLabels` pair and every
/// expression must hold. The error is `(key path below nodeSelector,
/// message)`, as the API server's validation would reject it.
pub fn selector_matches(
    sel: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Result<bool, (String, String)> {
    let mut all = true;
    for (k, v) in sel.match_labels.iter().flatten() {
        all &= labels.get(k) == Some(v);
    }
    for (i, e) in sel.match_expressions.iter().flatten().enumerate() {
        let values = e.values.as_deref().unwrap_or_default();
        let at = |key: &str| format!(".matchExpressions[{i}].{key}");
        let need_values = match e.operator.as_str() {
            "In" | "NotIn" => true,
            "Exists" | "DoesNotExist" => false,
            other => {
                return Err((
                    at("operator"),
                    format!(
                        "unknown operator {other:?} (expected In, NotIn, Exists or DoesNotExist)"
                    ),
                ))
            }
        };
        if need_values && values.is_empty() {
            return Err((
                at("values"),
                format!("{} needs at least one value", e.operator),
            ));
        }
        if !need_values && !values.is_empty() {
            return Err((at("values"), format!("{} takes no values", e.operator)));
        }
        let have = labels.get(&e.key);
        all &= match e.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            // As in Kubernetes: a node without the label is "not in".
            "NotIn" => !have.is_some_and(|v| values.contains(v)),
            "Exists" => have.is_some(),
            _ => have.is_none(),
        };
    }
    Ok(all)
}
