//! CI context from flags or from the CI system's environment variables:
//! GitHub Actions, GitLab CI, or generic `CI_*` variables. Flags win.

use provledger::core::statement::CiRun;

/// What the environment says about the current CI run.
#[derive(Debug, Default, Clone)]
pub struct CiEnv {
    pub run: CiRun,
    pub git_sha: Option<String>,
    pub builder_id: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl CiEnv {
    pub fn from_env() -> CiEnv {
        if var("GITHUB_ACTIONS").as_deref() == Some("true") {
            let server = var("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
            let repo = var("GITHUB_REPOSITORY");
            let run_id = var("GITHUB_RUN_ID");
            let run_url = match (&repo, &run_id) {
                (Some(r), Some(id)) => Some(format!("{server}/{r}/actions/runs/{id}")),
                _ => None,
            };
            return CiEnv {
                run: CiRun {
                    run_url,
                    run_id,
                    workflow: var("GITHUB_WORKFLOW_REF").or_else(|| var("GITHUB_WORKFLOW")),
                    repository: repo.as_ref().map(|r| format!("{server}/{r}")),
                },
                git_sha: var("GITHUB_SHA"),
                builder_id: var("GITHUB_WORKFLOW_REF").map(|w| format!("{server}/{w}")),
            };
        }
        if var("GITLAB_CI").as_deref() == Some("true") {
            return CiEnv {
                run: CiRun {
                    run_url: var("CI_PIPELINE_URL").or_else(|| var("CI_JOB_URL")),
                    run_id: var("CI_PIPELINE_ID"),
                    workflow: var("CI_JOB_NAME"),
                    repository: var("CI_PROJECT_URL"),
                },
                git_sha: var("CI_COMMIT_SHA"),
                builder_id: var("CI_SERVER_URL").map(|s| format!("{s}/gitlab-runner")),
            };
        }
        CiEnv {
            run: CiRun {
                run_url: var("CI_RUN_URL"),
                run_id: var("CI_RUN_ID"),
                workflow: var("CI_WORKFLOW"),
                repository: var("CI_REPOSITORY"),
            },
            git_sha: var("GIT_SHA").or_else(|| var("GIT_COMMIT")),
            builder_id: var("BUILDER_ID"),
        }
    }
}
