//! `key generate`, `key id`, `init` and `record policy`: keys and policies.

use super::*;

pub(super) fn key_generate(ctx: &Ctx, out: &Path) -> Result<()> {
    let key = SecretKey::generate();
    let pub_path = keyfile::write_new_key(out, &key)?;
    let id = key.id();
    ctx.emit(&KeyGenerated { secret: out.to_path_buf(), public: pub_path, key_id: id.to_string() });
    Ok(())
}

pub(super) fn key_id(ctx: &Ctx, file: &Path) -> Result<()> {
    let public = match keyfile::read_public(file) {
        Ok(p) => p,
        Err(public_err) => match keyfile::read_secret(file, ctx.insecure_keys) {
            Ok(s) => s.public(),
            Err(keyfile::KeyFileError::Format { .. }) => return Err(public_err.into()),
            Err(e) => return Err(e.into()),
        },
    };
    let id = public.id();
    ctx.emit(&KeyIdReport { key_id: id.to_string(), public: public.to_string() });
    Ok(())
}

/// Reads and checks a policy file; key paths are relative to it.
pub(super) fn read_policy(
    path: &Path,
    log: Option<&PolicyLog>,
) -> Result<(provledger::core::statement::PolicyPredicate, Vec<u8>)> {
    let source = input::read(path, "policy", input::MAX_POLICY_FILE)?;
    let text = std::str::from_utf8(&source)
        .map_err(|_| CliError::operational(format!("{}: not UTF-8 text", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut read_key = |rel: &str| -> std::result::Result<String, provledger::policy::ReadKeyError> {
        let p = base.join(rel);
        keyfile::read_public(&p).map(|k| k.to_string()).map_err(Into::into)
    };
    let predicate = parse_policy_toml(text, &path.display().to_string(), &mut read_key, log)?;
    Ok((predicate, source))
}

/// The log key a policy names.
pub(super) fn policy_log_key(predicate: &provledger::core::statement::PolicyPredicate) -> Result<NoteVerifier> {
    NoteVerifier::parse(&predicate.log.verifier_key).map_err(|e| CliError::operational(format!("policy log key: {e}")))
}

pub(super) fn init(ctx: &Ctx, root_keys: &[PathBuf], policy_path: &Path, log_key_path: Option<&Path>) -> Result<()> {
    let log_key = match log_key_path {
        Some(p) => ctx.secret(p)?,
        None => SecretKey::generate(),
    };
    let fallback = PolicyLog::new(&default_origin(&log_key.public()), log_key.public())
        .map_err(|e| CliError::operational(e.to_string()))?;
    let (predicate, source) = read_policy(policy_path, Some(&fallback))?;
    let named = policy_log_key(&predicate)?;
    if named.public != log_key.public() {
        let given =
            if log_key_path.is_some() { "the --log-key given is another key" } else { "no --log-key was given" };
        return Err(CliError::operational(format!("the policy's [log] names log key {}; {given}", named.public.id()))
            .hint("pass that key's secret with --log-key"));
    }
    let keys = root_keys.iter().map(|p| ctx.secret(p)).collect::<Result<Vec<_>>>()?;
    let statement = record::policy_statement(predicate, &source);
    let envelope = sign(&statement, &keys.iter().collect::<Vec<_>>());
    let genesis = ctx.dir().init(envelope, log_key, now()).map_err(|e| match e {
        provledger::ledger::dir::DirError::Ledger(l) => CliError::from_append(l),
        other => other.into(),
    })?;
    ctx.emit(&Initialised {
        genesis: genesis.hash().to_string(),
        ledger: ctx.ledger_dir.clone(),
        log_verifier_key: named.to_text(),
    });
    Ok(())
}

pub(super) fn record_policy(
    ctx: &Ctx,
    keys: &[PathBuf],
    policy_path: &Path,
    log_key_path: Option<&Path>,
) -> Result<()> {
    let ledger = ctx.open()?;
    let (current, current_policy) = ledger.policy()?;
    // A policy file without [log] keeps the log key in force.
    let current_log = PolicyLog { verifier_key: current_policy.log().to_text() };
    let (mut predicate, source) = read_policy(policy_path, Some(&current_log))?;
    let keys = keys.iter().map(|p| ctx.secret(p)).collect::<Result<Vec<_>>>()?;
    let named = policy_log_key(&predicate)?;
    let rotates = named.public != current_policy.log().public;
    if ctx.remote.is_some() {
        // The server holds the log key: it signs the checkpoint after this entry.
        if rotates || log_key_path.is_some() {
            return Err(CliError::operational(
                "--server: a policy that names a new log key is recorded on the server's host, which holds it",
            ));
        }
        predicate.previous = Some(current);
        let statement = record::policy_statement(predicate, &source);
        return append(ctx, &ledger, sign(&statement, &keys.iter().collect::<Vec<_>>())).map(|_| ());
    }
    let log_key = match log_key_path {
        Some(p) => ctx.secret(p)?,
        None => ctx.log_key()?,
    };
    if log_key.public() != named.public {
        return Err(CliError::operational(format!(
            "the policy names log key {}, which signs the checkpoint after this entry; the key at hand is {}",
            named.public.id(),
            log_key.id()
        ))
        .hint("pass the new log key's secret with --log-key"));
    }
    predicate.previous = Some(current);
    let statement = record::policy_statement(predicate, &source);
    // The new log key is staged beside the ledger first, and takes the place
    // of log.key only once the entry that names it is durable.
    let staged = if rotates { Some(ctx.dir().stage_log_key(&log_key)?) } else { None };
    let ledger = ledger.with_log_key(log_key);
    let result = append(ctx, &ledger, sign(&statement, &keys.iter().collect::<Vec<_>>()));
    if let (Some(staged), Ok(_)) = (staged, &result) {
        staged.commit()?;
    }
    result.map(|_| ())
}
