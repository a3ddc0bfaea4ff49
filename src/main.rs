mod cli;

// Verification decodes on all cores and walks the chain on another thread;
// mimalloc keeps the allocations that cross threads cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
