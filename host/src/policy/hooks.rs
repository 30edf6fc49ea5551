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
    Hook {
        name: "peer_connected",
        outcomes: &[("disconnect", &["error_message"])],
        guarded: &[],
    },
    Hook {
        name: "recover",
        outcomes: &[],
        guarded: &[],
    },
    Hook {
        name: "commitment_revocation",
        outcomes: &[],
        guarded: &[],
    },
    // Anything but `continue` makes lightningd stop without committing.
    Hook {
        name: "db_write",
        outcomes: &[("abort", &[])],
        guarded: &[],
    },
    // `failure_message` alone (no `result`) rejects too.
    Hook {
        name: "invoice_payment",
        outcomes: &[("reject", &["failure_message"])],
        guarded: &[],
    },
    Hook {
        name: "openchannel",
        outcomes: &[("reject", &["error_message"])],
        guarded: &["close_to", "mindepth", "reserve"],
    },
    Hook {
        name: "openchannel2",
        outcomes: &[("reject", &["error_message"])],
        guarded: &["close_to", "psbt", "our_funding_msat"],
    },
    Hook {
        name: "openchannel2_changed",
        outcomes: &[],
        guarded: &["psbt"],
    },
    Hook {
        name: "openchannel2_sign",
        outcomes: &[],
        guarded: &["psbt"],
    },
    Hook {
        name: "rbf_channel",
        outcomes: &[("reject", &["error_message"])],
        guarded: &["psbt", "our_funding_msat"],
    },
    Hook {
        name: "htlc_accepted",
        outcomes: &[
            ("fail", &["failure_message", "failure_onion"]),
            ("resolve", &[]),
        ],
        guarded: &[
            "payment_key",
            "forward_to",
            "payload",
            "extra_tlvs",
            "invoice_msat",
        ],
    },
    // Its outcomes are keys: `{"replace": request}`, `{"return": answer}`.
    Hook {
        name: "rpc_command",
        outcomes: &[("replace", &[]), ("return", &[])],
        guarded: &[],
    },
    Hook {
        name: "custommsg",
        outcomes: &[],
        guarded: &[],
    },
    Hook {
        name: "onion_message_recv",
        outcomes: &[],
        guarded: &[],
    },
    Hook {
        name: "onion_message_recv_secret",
        outcomes: &[],
        guarded: &[],
    },
];

/// Fields whose value lightningd decodes as hex (and stops on when it cannot).
const HEX_FIELDS: &[&str] = &[
    "failure_message",
    "failure_onion",
    "payment_key",
    "payload",
    "extra_tlvs",
];

impl Hook {
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
        let free: &[&str] = self
            .outcomes
            .iter()
            .find(|(o, _)| *o == outcome)
            .map_or(&[], |(_, fields)| fields);
        for (key, value) in answer {
            if key == "result" || (self.name == "rpc_command" && key == outcome) {
                continue;
            }
            if self.guards(key) {
                if !grant.fields.iter().any(|f| f == key) {
                    return Err(format!("field {key:?} is not granted"));
                }
            } else if !free.contains(&key.as_str()) {
                return Err(format!(
                    "field {key:?} is not one {:?} takes with {outcome:?}",
                    self.name
                ));
            }
            if HEX_FIELDS.contains(&key.as_str()) && !is_hex(value) {
                return Err(format!("field {key:?} is not a hex string"));
            }
        }
        Ok(())
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
            Some(other) => Err(format!("result {other} is not one {:?} knows", self.name)),
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

    #[test]
    fn a_bare_grant_lets_only_continue_through() {
        let bare = grant("name = \"openchannel\"");
        assert_eq!(
            check(
                "openchannel",
                &bare,
                json!({}),
                json!({"result": "continue"})
            ),
            Ok(())
        );
        assert_eq!(
            check(
                "openchannel",
                &bare,
                json!({}),
                json!({"result": "continue", "close_to": "bcrt1q"})
            ),
            Err("field \"close_to\" is not granted".into())
        );
        assert_eq!(
            check("openchannel", &bare, json!({}), json!({"result": "reject"})),
            Err("result \"reject\" is not granted".into())
        );
        assert_eq!(
            check(
                "db_write",
                &grant("name = \"db_write\""),
                json!({}),
                json!({"result": "abort"})
            ),
            Err("result \"abort\" is not granted".into())
        );
        assert_eq!(
            check(
                "peer_connected",
                &grant("name = \"peer_connected\""),
                json!({}),
                json!({"result": "bogus"})
            ),
            Err("result \"bogus\" is not one \"peer_connected\" knows".into())
        );
    }

    #[test]
    fn granted_outcomes_and_fields_pass_and_nothing_more() {
        let g = grant(
            "name = \"htlc_accepted\"\nresults = [\"fail\", \"resolve\"]\nfields = [\"payment_key\"]",
        );
        let key = "00".repeat(32);
        assert_eq!(
            check(
                "htlc_accepted",
                &g,
                json!({}),
                json!({"result": "resolve", "payment_key": key})
            ),
            Ok(())
        );
        assert_eq!(
            check(
                "htlc_accepted",
                &g,
                json!({}),
                json!({"result": "fail", "failure_message": "2002"})
            ),
            Ok(())
        );
        assert_eq!(
            check(
                "htlc_accepted",
                &g,
                json!({}),
                json!({"result": "continue", "forward_to": "00"})
            ),
            Err("field \"forward_to\" is not granted".into())
        );
        assert_eq!(
            check(
                "htlc_accepted",
                &g,
                json!({}),
                json!({"result": "fail", "failure_message": "xyz"})
            ),
            Err("field \"failure_message\" is not a hex string".into())
        );
        assert_eq!(
            check(
                "htlc_accepted",
                &g,
                json!({}),
                json!({"result": "fail", "error_message": "x"})
            ),
            Err("field \"error_message\" is not one \"htlc_accepted\" takes with \"fail\"".into())
        );
        let reject = grant("name = \"invoice_payment\"\nresults = [\"reject\"]");
        assert_eq!(
            check(
                "invoice_payment",
                &reject,
                json!({}),
                json!({"failure_message": "400f"})
            ),
            Ok(())
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
