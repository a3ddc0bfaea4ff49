//! The trust policy: which key may sign which statements, the ordered
//! environments and the checks each requires.
//!
//! A policy is data carried by a signed policy statement in the chain; this
//! module turns that data into a [`Policy`] only after checking every rule, and
//! reads the human-written TOML form. It does no I/O of its own: key files are
//! read through a callback so that the caller decides where paths lead.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use toml::Spanned;

use crate::core::FormatError;
use crate::core::keys::{ALGORITHM, KeyId, PUBLIC_KEY_PREFIX, PublicKey, SECRET_KEY_PREFIX};
use crate::core::note::NoteVerifier;
use crate::core::statement::{PolicyEnvironment, PolicyKey, PolicyLog, PolicyPredicate, Role, check_name};

/// Version of the policy predicate this build understands.
pub const POLICY_VERSION: u32 = 1;
/// Most keys in one policy.
pub const MAX_KEYS: usize = 256;
/// Most environments in one policy.
pub const MAX_ENVIRONMENTS: usize = 64;
/// Most tags or tag patterns bound to one environment.
pub const MAX_TAGS: usize = 32;
/// Longest tag or tag pattern (the OCI limit on a tag).
pub const MAX_TAG_LEN: usize = 128;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// `where_` is `file:line` when the policy came from a file.
    #[error("{where_}: {message}")]
    Invalid { where_: String, message: String },
    #[error("policy written by a newer provledger (policy version {0}); upgrade provledger")]
    NewerVersion(u32),
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A public key file the policy file names could not be read.
    #[error("{where_}: {source}")]
    KeyFile { where_: String, source: ReadKeyError },
}

/// Why the caller's `read_key` (see [`parse_policy_toml`]) could not read a
/// key file: the caller's own error.
pub type ReadKeyError = Box<dyn std::error::Error + Send + Sync>;

fn invalid(where_: &str, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid { where_: where_.to_string(), message: message.into() }
}

/// A key as the policy knows it.
#[derive(Clone, Debug)]
pub struct KeyInfo {
    pub name: String,
    pub public: PublicKey,
    pub roles: BTreeSet<Role>,
}

#[derive(Clone, Debug)]
pub struct Environment {
    pub name: String,
    pub required_checks: Vec<String>,
    pub requires: Option<String>,
    /// The tags (or `*` patterns) bound to this environment: the policy's
    /// list, or the environment's own name when it gives none.
    pub tags: Vec<String>,
}

impl Environment {
    /// Whether one of this environment's tags or patterns matches `tag`.
    pub fn matches_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|p| glob_match(p.as_bytes(), tag.as_bytes()))
    }
}

/// `*` matches any run of characters (none included); everything else
/// matches itself.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A tag or tag pattern outside the grammar [`check_tag_pattern`] reads.
#[derive(Debug, thiserror::Error)]
#[error(
    "tag {0:?} is not a tag or tag pattern (letters, digits, '_', '.', '-', '*'; not starting with '.' or '-'; \
     at most {MAX_TAG_LEN})"
)]
struct NotATagPattern(String);

/// A tag pattern: the OCI tag grammar `[A-Za-z0-9_][A-Za-z0-9_.-]*`, where
/// `*` may also stand anywhere; at most [`MAX_TAG_LEN`] bytes.
fn check_tag_pattern(pattern: &str) -> Result<(), NotATagPattern> {
    let b = pattern.as_bytes();
    let tag_char = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'*');
    let ok = !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && (b[0].is_ascii_alphanumeric() || matches!(b[0], b'_' | b'*'))
        && b.iter().all(tag_char);
    if ok { Ok(()) } else { Err(NotATagPattern(pattern.to_string())) }
}

/// A policy whose every rule holds. Built only by [`Policy::from_predicate`].
#[derive(Clone, Debug)]
pub struct Policy {
    keys: BTreeMap<KeyId, KeyInfo>,
    environments: Vec<Environment>,
    policy_threshold: u32,
    log: NoteVerifier,
}

/// The origin (and note key name) given to a log key when the policy names none.
pub fn default_origin(log_key: &PublicKey) -> String {
    format!("provledger/{}", &log_key.id().to_string()[..16])
}

impl PolicyLog {
    pub fn new(origin: &str, key: PublicKey) -> Result<PolicyLog, FormatError> {
        Ok(PolicyLog { verifier_key: NoteVerifier::new(origin, key)?.to_text() })
    }
}

impl Policy {
    /// Checks a policy predicate; `where_` names it in errors (an entry index
    /// or a file).
    pub fn from_predicate(p: &PolicyPredicate, where_: &str) -> Result<Policy, PolicyError> {
        if p.version > POLICY_VERSION {
            return Err(PolicyError::NewerVersion(p.version));
        }
        if p.version != POLICY_VERSION {
            return Err(invalid(where_, format!("unknown policy version {}", p.version)));
        }
        if p.keys.is_empty() {
            return Err(invalid(where_, "the policy names no key"));
        }
        if p.keys.len() > MAX_KEYS {
            return Err(invalid(where_, format!("more than {MAX_KEYS} keys")));
        }
        let mut keys = BTreeMap::new();
        let mut names = BTreeSet::new();
        for k in &p.keys {
            check_name("key", &k.name).map_err(|e| invalid(where_, e.to_string()))?;
            if !names.insert(k.name.as_str()) {
                return Err(invalid(where_, format!("key name {:?} appears twice", k.name)));
            }
            if k.algorithm != ALGORITHM {
                return Err(invalid(
                    where_,
                    format!("key {:?}: algorithm {:?} is not supported (ed25519 only)", k.name, k.algorithm),
                ));
            }
            let public =
                PublicKey::from_hex(&k.public).map_err(|e| invalid(where_, format!("key {:?}: {e}", k.name)))?;
            if public.id() != k.id {
                return Err(invalid(where_, format!("key {:?}: id {} does not match its public key", k.name, k.id)));
            }
            if k.roles.is_empty() {
                return Err(invalid(where_, format!("key {:?} has no role", k.name)));
            }
            let roles: BTreeSet<Role> = k.roles.iter().copied().collect();
            if roles.len() != k.roles.len() {
                return Err(invalid(where_, format!("key {:?} lists a role twice", k.name)));
            }
            if keys.insert(k.id, KeyInfo { name: k.name.clone(), public, roles }).is_some() {
                return Err(invalid(where_, format!("key {:?}: the same public key is listed twice", k.name)));
            }
        }
        let policy_keys = keys.values().filter(|k| k.roles.contains(&Role::Policy)).count();
        if policy_keys == 0 {
            return Err(invalid(
                where_,
                "no key holds the policy role: the ledger could never change its policy again",
            ));
        }
        if p.policy_threshold == 0 || p.policy_threshold as usize > policy_keys {
            return Err(invalid(
                where_,
                format!(
                    "policy_threshold {} must be between 1 and the {policy_keys} policy key(s)",
                    p.policy_threshold
                ),
            ));
        }
        let environments = check_environments(&p.environments, where_)?;
        let log = NoteVerifier::parse(&p.log.verifier_key).map_err(|e| invalid(where_, format!("log key: {e}")))?;
        if let Some(k) = keys.get(&log.public.id()) {
            // Key separation: a checkpoint signature must never double as a statement signature.
            return Err(invalid(
                where_,
                format!("the log key is also statement key {:?}; give the ledger a key of its own", k.name),
            ));
        }
        Ok(Policy { keys, environments, policy_threshold: p.policy_threshold, log })
    }

    pub fn key(&self, id: &KeyId) -> Option<&KeyInfo> {
        self.keys.get(id)
    }

    pub fn keys(&self) -> impl Iterator<Item = (&KeyId, &KeyInfo)> {
        self.keys.iter()
    }

    pub fn environments(&self) -> &[Environment] {
        &self.environments
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// The key that signs checkpoints; its name is their origin.
    pub fn log(&self) -> &NoteVerifier {
        &self.log
    }

    /// Why `tag` may not be moved by a promotion into `env`, if it may not.
    /// A tag belongs to the environment that lists it exactly; a tag no
    /// environment lists exactly belongs to the one environment whose
    /// patterns match it. So no promotion can move another environment's
    /// tag, and a tag two patterns claim is moved by neither.
    pub fn tag_not_bound(&self, env: &str, tag: &str) -> Option<String> {
        let target = self.environment(env)?;
        let exact: Vec<&str> =
            self.environments.iter().filter(|e| e.tags.iter().any(|t| t == tag)).map(|e| e.name.as_str()).collect();
        if !exact.is_empty() {
            return (!exact.contains(&env))
                .then(|| format!("tag {tag:?} is bound to environment {}", exact.join(", ")));
        }
        if !target.matches_tag(tag) {
            return Some(format!(
                "tag {tag:?} is not bound to environment {env} (its tags: {})",
                target.tags.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", ")
            ));
        }
        let others: Vec<&str> =
            self.environments.iter().filter(|e| e.name != env && e.matches_tag(tag)).map(|e| e.name.as_str()).collect();
        if !others.is_empty() {
            return Some(format!("tag {tag:?} is also matched by the tags of environment {}", others.join(", ")));
        }
        None
    }

    /// Distinct signatures with the given role a statement needs.
    pub fn threshold(&self, role: Role) -> usize {
        match role {
            Role::Policy => self.policy_threshold as usize,
            _ => 1,
        }
    }
}

fn check_environments(envs: &[PolicyEnvironment], where_: &str) -> Result<Vec<Environment>, PolicyError> {
    if envs.len() > MAX_ENVIRONMENTS {
        return Err(invalid(where_, format!("more than {MAX_ENVIRONMENTS} environments")));
    }
    let mut seen = BTreeSet::new();
    for e in envs {
        check_name("environment", &e.name).map_err(|err| invalid(where_, err.to_string()))?;
        if !seen.insert(e.name.as_str()) {
            return Err(invalid(where_, format!("environment {:?} is defined twice", e.name)));
        }
        let mut checks = BTreeSet::new();
        for c in &e.required_checks {
            check_name("check", c).map_err(|err| invalid(where_, format!("environment {:?}: {err}", e.name)))?;
            if !checks.insert(c.as_str()) {
                return Err(invalid(where_, format!("environment {:?} requires check {c:?} twice", e.name)));
            }
        }
        if e.tags.len() > MAX_TAGS {
            return Err(invalid(where_, format!("environment {:?} binds more than {MAX_TAGS} tags", e.name)));
        }
        let mut tags = BTreeSet::new();
        for t in &e.tags {
            check_tag_pattern(t).map_err(|err| invalid(where_, format!("environment {:?}: {err}", e.name)))?;
            if !tags.insert(t.as_str()) {
                return Err(invalid(where_, format!("environment {:?} binds tag {t:?} twice", e.name)));
            }
        }
    }
    for e in envs {
        if let Some(r) = &e.requires
            && !seen.contains(r.as_str())
        {
            return Err(invalid(where_, format!("environment {:?} requires unknown environment {r:?}", e.name)));
        }
    }
    // Follow each `requires` chain; more steps than environments is a cycle.
    for e in envs {
        let mut path = vec![e.name.as_str()];
        let mut cur = e;
        while let Some(next) = &cur.requires {
            if path.contains(&next.as_str()) {
                path.push(next);
                let path: Vec<String> = path.iter().map(|n| format!("{n:?}")).collect();
                return Err(invalid(where_, format!("environments form a requires cycle: {}", path.join(" -> "))));
            }
            path.push(next);
            cur = envs.iter().find(|x| &x.name == next).expect("checked above");
        }
    }
    Ok(envs
        .iter()
        .map(|e| Environment {
            name: e.name.clone(),
            required_checks: e.required_checks.clone(),
            requires: e.requires.clone(),
            tags: if e.tags.is_empty() { vec![e.name.clone()] } else { e.tags.clone() },
        })
        .collect())
}

// ---------------------------------------------------------------- TOML form

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlPolicy {
    #[serde(default)]
    policy_threshold: Option<u32>,
    #[serde(default)]
    keys: BTreeMap<String, Spanned<TomlKey>>,
    #[serde(default)]
    environments: Vec<Spanned<TomlEnvironment>>,
    #[serde(default)]
    log: Option<Spanned<TomlLog>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlLog {
    public: Spanned<String>,
    #[serde(default)]
    origin: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlKey {
    public: Spanned<String>,
    roles: Vec<Role>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlEnvironment {
    name: String,
    #[serde(default)]
    required_checks: Vec<String>,
    #[serde(default)]
    requires: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

/// Reads a policy file. `file` names it in errors; `read_key` returns the
/// text of a public key file named relative to the policy file. A file
/// without a `[log]` table gets `log` (the ledger's key, given on the command
/// line or carried over from the policy in force). Every rule of
/// [`Policy::from_predicate`] is checked, with `file:line` in the message.
pub fn parse_policy_toml(
    text: &str,
    file: &str,
    read_key: &mut dyn FnMut(&str) -> Result<String, ReadKeyError>,
    log: Option<&PolicyLog>,
) -> Result<PolicyPredicate, PolicyError> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    // `file:line` where a line is known, else the file alone.
    let at = |line: Option<usize>| line.map_or_else(|| file.to_string(), |l| format!("{file}:{l}"));
    let parsed: TomlPolicy =
        toml::from_str(text).map_err(|e| invalid(&at(e.span().map(|s| line_of(s.start))), e.message().to_string()))?;
    // A public key inline or as a path, never a secret key.
    let mut public_key = |name: &str, public: &Spanned<String>| -> Result<PublicKey, PolicyError> {
        let at = format!("{file}:{}", line_of(public.span().start));
        let text = public.get_ref();
        if text.starts_with(SECRET_KEY_PREFIX) {
            // Never echo it: the message goes to logs.
            return Err(invalid(
                &at,
                format!(
                    "key {name:?}: a secret key is written where a public key belongs; remove it from the file and rotate that key"
                ),
            ));
        }
        let text = if text.starts_with(PUBLIC_KEY_PREFIX) {
            text.clone()
        } else {
            read_key(text).map_err(|source| PolicyError::KeyFile { where_: at.clone(), source })?
        };
        text.parse().map_err(|e: FormatError| invalid(&at, format!("key {name:?}: {e}")))
    };
    let mut keys = Vec::new();
    for (name, key) in parsed.keys {
        let key = key.into_inner();
        let public = public_key(&name, &key.public)?;
        keys.push(PolicyKey {
            name,
            id: public.id(),
            algorithm: ALGORITHM.to_string(),
            public: public.to_hex(),
            roles: key.roles,
        });
    }
    let environments = parsed
        .environments
        .into_iter()
        .map(|e| {
            let e = e.into_inner();
            PolicyEnvironment { name: e.name, required_checks: e.required_checks, requires: e.requires, tags: e.tags }
        })
        .collect();
    let log = match parsed.log {
        Some(l) => {
            let at = format!("{file}:{}", line_of(l.span().start));
            let l = l.into_inner();
            let public = public_key("log", &l.public)?;
            let origin = l.origin.unwrap_or_else(|| default_origin(&public));
            PolicyLog::new(&origin, public).map_err(|e| invalid(&at, format!("log: {e}")))?
        }
        None => log.cloned().ok_or_else(|| {
            invalid(&format!("{file}:1"), "the policy names no log key: add a [log] table or pass --log-key")
        })?,
    };
    let predicate = PolicyPredicate {
        version: POLICY_VERSION,
        keys,
        environments,
        policy_threshold: parsed.policy_threshold.unwrap_or(1),
        log,
        previous: None,
    };
    // Semantic errors name the line of the environment or key involved when
    // they can; the message itself names the item.
    Policy::from_predicate(&predicate, file).map_err(|e| match e {
        PolicyError::Invalid { message, .. } => invalid(&at(locate(text, &message).map(line_of)), message),
        other => other,
    })?;
    Ok(predicate)
}

/// Finds the first quoted name of a message in the text, for a line number.
fn locate(text: &str, message: &str) -> Option<usize> {
    let start = message.find('"')? + 1;
    let end = start + message[start..].find('"')?;
    let needle = &message[start..end];
    text.find(&format!("\"{needle}\"")).or_else(|| text.find(&format!("keys.{needle}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::keys::SecretKey;

    fn read(_: &str) -> Result<String, ReadKeyError> {
        Err("no files in this test".into())
    }

    fn log() -> PolicyLog {
        PolicyLog::new("example.com/ledger", SecretKey::from_seed(&[9; 32]).public()).unwrap()
    }

    fn policy_text(extra_env: &str) -> String {
        let root = SecretKey::from_seed(&[1; 32]).public();
        let ci = SecretKey::from_seed(&[2; 32]).public();
        format!(
            "[keys.root]\npublic = \"{root}\"\nroles = [\"policy\"]\n\n[keys.ci]\npublic = \"{ci}\"\nroles = [\"build\"]\n\n\
             [[environments]]\nname = \"dev\"\nrequired_checks = [\"unit\"]\n{extra_env}"
        )
    }

    #[test]
    fn parses_and_checks() {
        let p = parse_policy_toml(&policy_text(""), "p.toml", &mut read, Some(&log())).unwrap();
        let policy = Policy::from_predicate(&p, "p").unwrap();
        assert_eq!(policy.environments().len(), 1);
        assert_eq!(policy.keys().count(), 2);
        assert_eq!(policy.threshold(Role::Policy), 1);
    }

    #[test]
    fn unknown_role_names_line() {
        let text = policy_text("").replace("roles = [\"build\"]", "roles = [\"deploy\"]");
        let e = parse_policy_toml(&text, "p.toml", &mut read, Some(&log())).unwrap_err().to_string();
        assert!(e.starts_with("p.toml:7:"), "{e}");
        assert!(e.contains("deploy"), "{e}");
    }

    #[test]
    fn duplicate_environment_and_cycle() {
        let dup = policy_text("\n[[environments]]\nname = \"dev\"\n");
        let e = parse_policy_toml(&dup, "p.toml", &mut read, Some(&log())).unwrap_err().to_string();
        assert!(e.contains("defined twice"), "{e}");
        let cyc = policy_text("requires = \"prod\"\n\n[[environments]]\nname = \"prod\"\nrequires = \"dev\"\n");
        let e = parse_policy_toml(&cyc, "p.toml", &mut read, Some(&log())).unwrap_err().to_string();
        assert!(e.contains("cycle"), "{e}");
        let unknown = policy_text("requires = \"qa\"\n");
        let e = parse_policy_toml(&unknown, "p.toml", &mut read, Some(&log())).unwrap_err().to_string();
        assert!(e.contains("unknown environment \"qa\""), "{e}");
    }

    #[test]
    fn refuses_policy_without_policy_key_and_secret_key_text() {
        let text = policy_text("").replace("roles = [\"policy\"]", "roles = [\"promotion\"]");
        let e = parse_policy_toml(&text, "p.toml", &mut read, Some(&log())).unwrap_err().to_string();
        assert!(e.contains("no key holds the policy role"), "{e}");
        let sk = SecretKey::from_seed(&[1; 32]);
        let text = format!("[keys.root]\npublic = \"{}\"\nroles = [\"policy\"]\n", sk.to_text().trim());
        // A secret key pasted inline is refused without being echoed.
        let e = parse_policy_toml(&text, "p.toml", &mut |p| Err(format!("cannot read {p}").into()), Some(&log()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("secret key is written where a public key belongs"), "{e}");
        assert!(!e.contains(&sk.to_text().trim()[40..]), "{e}");
    }

    #[test]
    fn an_unreadable_key_file_names_the_line_and_keeps_the_callers_error() {
        let text = policy_text("").replacen("public = \"provledger-public-key", "public = \"root.pub\"\n#", 1);
        let e = parse_policy_toml(&text, "p.toml", &mut |p| Err(format!("cannot read {p}").into()), Some(&log()))
            .unwrap_err();
        assert_eq!(e.to_string(), "p.toml:2: cannot read root.pub");
        assert!(matches!(e, PolicyError::KeyFile { .. }), "{e:?}");
    }

    #[test]
    fn tag_patterns() {
        for (p, t, want) in [
            ("prod", "prod", true),
            ("prod", "prod2", false),
            ("prod-*", "prod-", true),
            ("prod-*", "prod-1.4", true),
            ("*-prod", "v1-prod", true),
            ("*-prod", "v1-prod-x", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("*", "anything", true),
        ] {
            assert_eq!(glob_match(p.as_bytes(), t.as_bytes()), want, "{p} ~ {t}");
        }
        assert!(check_tag_pattern("prod-*").is_ok());
        assert_eq!(
            check_tag_pattern("-prod").unwrap_err().to_string(),
            "tag \"-prod\" is not a tag or tag pattern (letters, digits, '_', '.', '-', '*'; not starting with '.' \
             or '-'; at most 128)"
        );
        assert!(check_tag_pattern("pr od").is_err());
        assert!(check_tag_pattern(&"a".repeat(MAX_TAG_LEN + 1)).is_err());
    }

    #[test]
    fn tags_belong_to_one_environment() {
        let text = policy_text(
            "\n[[environments]]\nname = \"staging\"\n\n[[environments]]\nname = \"prod\"\ntags = [\"prod\", \"v*\"]\n\n[[environments]]\nname = \"qa\"\ntags = [\"*\"]\n",
        );
        let p = parse_policy_toml(&text, "p.toml", &mut read, Some(&log())).unwrap();
        let policy = Policy::from_predicate(&p, "p").unwrap();
        assert_eq!(policy.tag_not_bound("staging", "staging"), None);
        assert_eq!(policy.tag_not_bound("prod", "prod"), None);
        assert!(policy.tag_not_bound("staging", "prod").unwrap().contains("bound to environment prod"));
        assert!(policy.tag_not_bound("staging", "v1").unwrap().contains("not bound to environment staging"));
        // qa's "*" matches every tag, but never one another environment lists.
        assert!(policy.tag_not_bound("qa", "prod").unwrap().contains("bound to environment prod"));
        assert!(policy.tag_not_bound("qa", "staging").unwrap().contains("bound to environment staging"));
        assert!(policy.tag_not_bound("qa", "dev").unwrap().contains("bound to environment dev"));
        assert_eq!(policy.tag_not_bound("qa", "feature-x"), None);
        // Two patterns claim v1.4: neither environment may move it.
        assert!(policy.tag_not_bound("prod", "v1.4").unwrap().contains("environment qa"));
        assert!(policy.tag_not_bound("qa", "v1.4").unwrap().contains("environment prod"));
    }

    #[test]
    fn log_key_from_the_file_or_the_caller() {
        let e = parse_policy_toml(&policy_text(""), "p.toml", &mut read, None).unwrap_err().to_string();
        assert!(e.contains("names no log key"), "{e}");
        let ledger = SecretKey::from_seed(&[7; 32]).public();
        let text = format!("{}\n[log]\npublic = \"{ledger}\"\norigin = \"ledger.example.com/acme\"\n", policy_text(""));
        let p = parse_policy_toml(&text, "p.toml", &mut read, Some(&log())).unwrap();
        let policy = Policy::from_predicate(&p, "p").unwrap();
        assert_eq!(policy.log().name, "ledger.example.com/acme");
        assert_eq!(policy.log().public, ledger);
        // Without an origin, the default names the key.
        let text = format!("{}\n[log]\npublic = \"{ledger}\"\n", policy_text(""));
        let p = parse_policy_toml(&text, "p.toml", &mut read, None).unwrap();
        assert_eq!(Policy::from_predicate(&p, "p").unwrap().log().name, default_origin(&ledger));
        // The ledger's key may not also sign statements.
        let root = SecretKey::from_seed(&[1; 32]).public();
        let text = format!("{}\n[log]\npublic = \"{root}\"\n", policy_text(""));
        let e = parse_policy_toml(&text, "p.toml", &mut read, None).unwrap_err().to_string();
        assert!(e.contains("the log key is also statement key \"root\""), "{e}");
        // An origin a note cannot carry is refused with its line.
        let text = format!("{}\n[log]\npublic = \"{ledger}\"\norigin = \"a b\"\n", policy_text(""));
        let e = parse_policy_toml(&text, "p.toml", &mut read, None).unwrap_err().to_string();
        let line = text.lines().position(|l| l == "[log]").unwrap() + 1;
        assert!(e.starts_with(&format!("p.toml:{line}:")) || e.starts_with(&format!("p.toml:{}:", line + 1)), "{e}");
        assert!(e.contains("white space"), "{e}");
    }
}
