//! `key generate`, `key id`, `init` and `record policy`: keys and policies.

use super::*;

pub(super) fn key_generate(ctx: &Ctx, out: &Path) -> Result<()> {
    let key = SecretKey::generate();
    let pub_path = keyfile::write_new_key(out, &key)?;
    let id = key.id();
    ctx.emit(json!({"secret": out, "public": pub_path, "key_id": id.to_string()}), || {
        println!("wrote secret key {} (mode 0600) and public key {}", out.display(), pub_path.display());
        println!("key id {id}");
    });
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
    ctx.emit(json!({"key_id": id.to_string(), "public": public.to_string()}), || println!("{id}"));
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
    let mut read_key = |rel: &str| -> std::result::Result<String, String> {
        let p = base.join(rel);
        keyfile::read_public(&p).map(|k| k.to_string()).map_err(|e| e.to_string())
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
    // Check the genesis entry before anything is created on disk.
    let (probe, _) = provledger::core::entry::UnverifiedEntry::build(0, EntryHash::ZERO, now(), envelope.clone());
    ChainState::empty().verify_next(probe, &MemPrefix::default()).map_err(|e| CliError::from_append(e.into()))?;
    let store = SledStore::create_keeping(&ctx.ledger_dir, ctx.lock_wait, ctx.min_free)?;
    // The ledger (and its sled lock) lives only inside the closure, so that a
    // failure can remove what was created.
    let result = (|| -> Result<VerifiedEntry> {
        init_log_key(&ctx.log_key_path(), &log_key)?;
        let ledger = Ledger::new(store).with_log_key(log_key);
        ledger.init(envelope, now()).map_err(CliError::from_append)
    })();
    let genesis = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_dir_all(ctx.ledger_dir.join(provledger::store::DB_DIR));
            let _ = std::fs::remove_file(ctx.ledger_dir.join("log.key"));
            let _ = std::fs::remove_file(ctx.ledger_dir.join("log.key.pub"));
            return Err(e);
        }
    };
    let hash = genesis.hash();
    let vkey = named.to_text();
    ctx.emit(json!({"genesis": hash.to_string(), "ledger": ctx.ledger_dir, "log_verifier_key": vkey}), || {
        // Standard output carries the genesis hash alone, for scripts.
        println!("{hash}");
        eprintln!("checkpoints are signed by log key {vkey}");
    });
    Ok(())
}

/// Writes the log key of a ledger being created. The store is held and has
/// no entry, so a log key already there was left by an `init` killed before
/// its genesis entry: it signed nothing, and is replaced.
pub(super) fn init_log_key(path: &Path, key: &SecretKey) -> Result<()> {
    let stale = |e: std::io::Error| CliError::operational(format!("{}: {e}", path.display()));
    provledger::fsutil::remove_stale_temps(path).map_err(stale)?;
    provledger::fsutil::remove_stale_temps(&keyfile::public_path(path)).map_err(stale)?;
    keyfile::replace_key(path, key)?;
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
    let staged = ctx.ledger_dir.join("log.key.next");
    if rotates {
        let _ = std::fs::remove_file(&staged);
        let _ = std::fs::remove_file(keyfile::public_path(&staged));
        keyfile::write_new_key(&staged, &log_key)?;
    }
    let ledger = ledger.with_log_key(log_key);
    let result = append(ctx, &ledger, sign(&statement, &keys.iter().collect::<Vec<_>>()));
    if rotates {
        if result.is_ok() {
            for (from, to) in [
                (staged.clone(), ctx.log_key_path()),
                (keyfile::public_path(&staged), keyfile::public_path(&ctx.log_key_path())),
            ] {
                std::fs::rename(&from, &to).map_err(|e| {
                    CliError::operational(format!(
                        "the policy entry is recorded, but moving {} to {}: {e}",
                        from.display(),
                        to.display()
                    ))
                })?;
            }
        } else {
            let _ = std::fs::remove_file(&staged);
            let _ = std::fs::remove_file(keyfile::public_path(&staged));
        }
    }
    result.map(|_| ())
}
