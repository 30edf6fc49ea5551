//! lightningd's hooks (v25.12, `doc/developers-guide/plugin-development/hooks.md`
//! and the `*_hook_deserialize` functions beside each `REGISTER_PLUGIN_HOOK`),
//! what each accepts as an answer, and the check of a guest's answer against
//! the operator's grant.
//!
//! Every hook accepts `{"result": "continue"}`. Other outcomes, and the fields
//! that move money or commands (`close_to`, `payment_key`, `rpc_command`'s
//! `replace`, …), pass only when the grant names them: a bare grant lets
//! `continue` through and nothing else.

use super::HookGrant;
use crate::shown::{quoted, shown};
use serde_json::{Map, Value};

/// One of lightningd's hooks.
pub struct Hook {
    pub name: &'static str,
    /// Outcomes besides `continue`, each with the fields it may carry.
    outcomes: &'static [(&'static str, &'static [&'static str])],
    /// Fields that move money or commands: allowed only when granted.
    guarded: &'static [&'static str],
}

/// Every hook lightningd v25.12 has.
pub const HOOKS: &[Hook] = &[
    hook("peer_connected", &[("disconnect", &["error_message"])], &[]),
    hook("recover", &[], &[]),
    hook("commitment_revocation", &[], &[]),
    // Anything but `continue` makes lightningd stop without committing.
    hook("db_write", &[("abort", &[])], &[]),
    // `failure_message` alone (no `result`) rejects too.
    hook("invoice_payment", &[("reject", &["failure_message"])], &[]),
    hook(
        "openchannel",
        &[("reject", &["error_message"])],
        &["close_to", "mindepth", "reserve"],
    ),
    hook(
        "openchannel2",
        &[("reject", &["error_message"])],
        &["close_to", "psbt", "our_funding_msat"],
    ),
    hook("openchannel2_changed", &[], &["psbt"]),
    hook("openchannel2_sign", &[], &["psbt"]),
    hook(
        "rbf_channel",
        &[("reject", &["error_message"])],
        &["psbt", "our_funding_msat"],
    ),
    hook(
        "htlc_accepted",
        &[
            ("fail", &["failure_message", "failure_onion"]),
            ("resolve", &[]),
        ],
        &[
            "payment_key",
            "forward_to",
            "payload",
            "extra_tlvs",
            "invoice_msat",
        ],
    ),
    // Its outcomes are keys: `{"replace": request}`, `{"return": answer}`.
    hook("rpc_command", &[("replace", &[]), ("return", &[])], &[]),
    hook("custommsg", &[], &[]),
    hook("onion_message_recv", &[], &[]),
    hook("onion_message_recv_secret", &[], &[]),
];

/// One row of [`HOOKS`].
const fn hook(
    name: &'static str,
    outcomes: &'static [(&'static str, &'static [&'static str])],
    guarded: &'static [&'static str],
) -> Hook {
    Hook {
        name,
        outcomes,
        guarded,
    }
}

/// Hooks whose `continue` must carry a `psbt` (lightningd stops without
/// one); handing back the PSBT they were given changes nothing.
const PSBT_ROUNDS: &[&str] = &["openchannel2_changed", "openchannel2_sign"];

/// Fields whose value lightningd decodes as hex (and stops on when it cannot).
const HEX_FIELDS: &[&str] = &[
    "failure_message",
    "failure_onion",
    "payment_key",
    "payload",
    "extra_tlvs",
];

impl Hook {
    /// Whether checking an answer needs the hook's payload (the command
    /// rpc_command is about, the PSBT a funding round was given).
    pub fn reads_payload(name: &str) -> bool {
        name == "rpc_command" || PSBT_ROUNDS.contains(&name)
    }

    /// The answer that changes nothing, for when the guest's may not be
    /// used: `continue`, with the PSBT handed back where lightningd needs one.
    pub fn safe_default(name: &str, payload: &Value) -> Value {
        match payload[name]["psbt"].as_str() {
            Some(psbt) if PSBT_ROUNDS.contains(&name) => {
                serde_json::json!({"result": "continue", "psbt": psbt})
            }
            _ => serde_json::json!({"result": "continue"}),
        }
    }

    /// The hook called `name`, if lightningd has one.
    pub fn find(name: &str) -> Option<&'static Hook> {
        HOOKS.iter().find(|h| h.name == name)
    }

    /// Whether `outcome` is one this hook knows (`continue` always is).
    pub fn knows_outcome(&self, outcome: &str) -> bool {
        outcome == "continue" || self.outcomes.iter().any(|(o, _)| *o == outcome)
    }

    /// Whether `field` is one of this hook's guarded fields.
    pub fn guards(&self, field: &str) -> bool {
        self.guarded.contains(&field)
    }

    /// The outcomes and guarded fields a grant may name, for messages.
    pub fn grantable(&self) -> String {
        let outcomes: Vec<&str> = self.outcomes.iter().map(|(o, _)| *o).collect();
        if outcomes.is_empty() && self.guarded.is_empty() {
            return "nothing but continue".into();
        }
        format!(
            "results {:?}, fields {:?}{}",
            outcomes,
            self.guarded,
            if self.name == "rpc_command" {
                ", methods [...]"
            } else {
                ""
            }
        )
    }

    /// Check the guest's `answer` to this hook, called with `payload`, against
    /// `grant`: `Err` says why it may not reach lightningd.
    pub fn check(
        &self,
        grant: &HookGrant,
        payload: &Value,
        answer: &Map<String, Value>,
    ) -> Result<(), String> {
        let outcome = self.outcome(answer)?;
        if outcome != "continue" && !grant.results.iter().any(|r| r == outcome) {
            return Err(format!("result {outcome:?} is not granted"));
        }
        if self.name == "rpc_command" && outcome != "continue" {
            let method = payload["rpc_command"]["method"].as_str().unwrap_or("");
            if !grant.methods.iter().any(|m| m == method) {
                return Err(format!(
                    "{outcome:?} of command {method:?} is not granted (methods)"
                ));
            }
        }
        if PSBT_ROUNDS.contains(&self.name) && !answer.contains_key("psbt") {
            return Err("continue without the psbt lightningd needs".into());
        }
        let free: &[&str] = self
            .outcomes
            .iter()
            .find(|(o, _)| *o == outcome)
            .map_or(&[], |(_, fields)| fields);
        for (key, value) in answer {
            if key == "result" || (self.name == "rpc_command" && key == outcome) {
                continue;
            }
            // The PSBT handed back as it came changes nothing.
            let unchanged = key == "psbt" && payload[self.name]["psbt"] == *value;
            if self.guards(key) {
                if !unchanged && !grant.fields.iter().any(|f| f == key) {
                    return Err(format!("field {} is not granted", quoted(key)));
                }
            } else if !free.contains(&key.as_str()) {
                return Err(format!(
                    "field {} is not one {:?} takes with {outcome:?}",
                    quoted(key),
                    self.name
                ));
            }
            if HEX_FIELDS.contains(&key.as_str()) && !is_hex(value) {
                return Err(format!("field {} is not a hex string", quoted(key)));
            }
        }
        Ok(())
    }

    /// What a refused `answer` tried that moves money or changes the node,
    /// for the audit: `result "fail"` for an outcome other than `continue`,
    /// else `field "payment_key"` for the first guarded field it sets (the
    /// PSBT handed back unchanged aside). Only this hook's own names, so
    /// they are finite.
    pub fn moves(&self, payload: &Value, answer: &Map<String, Value>) -> Option<String> {
        match self.outcome(answer) {
            Ok(outcome) if outcome != "continue" => return Some(format!("result {outcome:?}")),
            _ => {}
        }
        self.guarded
            .iter()
            .find(|f| {
                answer
                    .get(**f)
                    .is_some_and(|v| !(**f == "psbt" && payload[self.name]["psbt"] == *v))
            })
            .map(|f| format!("field {f:?}"))
    }

    /// What the answer asks lightningd to do.
    fn outcome<'a>(&self, answer: &'a Map<String, Value>) -> Result<&'a str, String> {
        match answer.get("result") {
            Some(Value::String(result)) if self.knows_outcome(result) => {
                if self.name == "rpc_command" && result != "continue" {
                    return Err(format!(
                        "rpc_command answers {result:?} as a key, not a result"
                    ));
                }
                Ok(result)
            }
            Some(other) => Err(format!(
                "result {} is not one {:?} knows",
                shown(&other.to_string()),
                self.name
            )),
            None if self.name == "rpc_command" => ["replace", "return"]
                .into_iter()
                .find_map(|k| answer.get_key_value(k))
                .filter(|(_, v)| v.is_object())
                .map(|(k, _)| k.as_str())
                .ok_or_else(|| "no result, replace or return object".to_string()),
            None if self.name == "invoice_payment" && answer.contains_key("failure_message") => {
                Ok("reject")
            }
            None => Err("no result".into()),
        }
    }
}

fn is_hex(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() % 2 == 0 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grant(toml: &str) -> HookGrant {
        toml::from_str(toml).unwrap()
    }

    fn check(hook: &str, grant: &HookGrant, payload: Value, answer: Value) -> Result<(), String> {
        Hook::find(hook)
            .unwrap()
            .check(grant, &payload, answer.as_object().unwrap())
    }

    /// Each `(hook, grant, answer, verdict)`: `Ok` passes, else the reason.
    fn verdicts(cases: &[(&str, &str, Value, Result<(), &str>)]) {
        for (hook, grant_toml, answer, expected) in cases {
            let got = check(hook, &grant(grant_toml), json!({}), answer.clone());
            assert_eq!(
                got.as_ref().map(|_| ()).map_err(|e| e.as_str()),
                *expected,
                "{hook} {answer}"
            );
        }
    }

    #[test]
    fn a_bare_grant_lets_only_continue_through() {
        let bare = |hook: &str| format!("name = {hook:?}");
        let (open, peer, db) = (
            bare("openchannel"),
            bare("peer_connected"),
            bare("db_write"),
        );
        verdicts(&[
            ("openchannel", &open, json!({"result": "continue"}), Ok(())),
            (
                "openchannel",
                &open,
                json!({"result": "continue", "close_to": "bcrt1q"}),
                Err("field \"close_to\" is not granted"),
            ),
            (
                "openchannel",
                &open,
                json!({"result": "reject"}),
                Err("result \"reject\" is not granted"),
            ),
            (
                "db_write",
                &db,
                json!({"result": "abort"}),
                Err("result \"abort\" is not granted"),
            ),
            (
                "peer_connected",
                &peer,
                json!({"result": "bogus"}),
                Err("result \"bogus\" is not one \"peer_connected\" knows"),
            ),
        ]);
    }

    #[test]
    fn granted_outcomes_and_fields_pass_and_nothing_more() {
        let g = "name = \"htlc_accepted\"\nresults = [\"fail\", \"resolve\"]\nfields = [\"payment_key\"]";
        let key = "00".repeat(32);
        verdicts(&[
            (
                "htlc_accepted",
                g,
                json!({"result": "resolve", "payment_key": key}),
                Ok(()),
            ),
            (
                "htlc_accepted",
                g,
                json!({"result": "fail", "failure_message": "2002"}),
                Ok(()),
            ),
            (
                "htlc_accepted",
                g,
                json!({"result": "continue", "forward_to": "00"}),
                Err("field \"forward_to\" is not granted"),
            ),
            (
                "htlc_accepted",
                g,
                json!({"result": "fail", "failure_message": "xyz"}),
                Err("field \"failure_message\" is not a hex string"),
            ),
            (
                "htlc_accepted",
                g,
                json!({"result": "fail", "error_message": "x"}),
                Err("field \"error_message\" is not one \"htlc_accepted\" takes with \"fail\""),
            ),
            (
                "invoice_payment",
                "name = \"invoice_payment\"\nresults = [\"reject\"]",
                json!({"failure_message": "400f"}),
                Ok(()),
            ),
        ]);
    }

    #[test]
    fn funding_rounds_need_their_psbt_and_may_hand_it_back_unchanged() {
        let bare = grant("name = \"openchannel2_changed\"");
        let payload = json!({"openchannel2_changed": {"channel_id": "00", "psbt": "cHNidP8B"}});
        let answer = |a: Value| check("openchannel2_changed", &bare, payload.clone(), a);
        assert_eq!(
            answer(json!({"result": "continue"})),
            Err("continue without the psbt lightningd needs".into())
        );
        assert_eq!(
            answer(json!({"result": "continue", "psbt": "cHNidP8B"})),
            Ok(())
        );
        assert_eq!(
            answer(json!({"result": "continue", "psbt": "cHNidP8Bother"})),
            Err("field \"psbt\" is not granted".into())
        );
        assert_eq!(
            Hook::safe_default("openchannel2_changed", &payload),
            json!({"result": "continue", "psbt": "cHNidP8B"})
        );
        assert_eq!(
            Hook::safe_default("peer_connected", &json!({})),
            json!({"result": "continue"})
        );
    }

    #[test]
    fn rpc_command_replaces_and_returns_only_granted_commands() {
        let g = grant("name = \"rpc_command\"\nresults = [\"return\"]\nmethods = [\"help\"]");
        let call = |method: &str| json!({"rpc_command": {"id": 1, "method": method, "params": {}}});
        let ret = json!({"return": {"result": {"help": []}}});
        assert_eq!(check("rpc_command", &g, call("help"), ret.clone()), Ok(()));
        assert_eq!(
            check("rpc_command", &g, call("newaddr"), ret),
            Err("\"return\" of command \"newaddr\" is not granted (methods)".into())
        );
        let replace = json!({"replace": {"method": "withdraw", "params": {"destination": "x", "satoshi": "all"}}});
        assert_eq!(
            check("rpc_command", &g, call("help"), replace),
            Err("result \"replace\" is not granted".into())
        );
        assert_eq!(
            check(
                "rpc_command",
                &g,
                call("help"),
                json!({"result": "continue"})
            ),
            Ok(())
        );
    }
}
