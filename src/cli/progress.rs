//! Progress bars for long exports and verifications: drawn on a terminal,
//! silent when standard error is not one or output is JSON.

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub fn bar(json: bool, total: u64, what: &str) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} entries ({per_sec}, {eta} left)")
        .expect("a valid template");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}
