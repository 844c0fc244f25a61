//! `--shard auto`: this process's shard index and count from the
//! environment of the cluster engine that started it.
//!
//! | engine | index | count |
//! | --- | --- | --- |
//! | Slurm job array | `SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN` | `SLURM_ARRAY_TASK_COUNT` (the array must be `MIN-MAX` without step) |
//! | Kubernetes Indexed Job | `JOB_COMPLETION_INDEX` | `--shard-count` or `CMAEMU_SHARD_COUNT` (the Job's `completions` is not in the environment) |
//! | GitLab CI `parallel:` | `CI_NODE_INDEX - 1` | `CI_NODE_TOTAL` |
//!
//! A GitHub Actions matrix passes `--shard ${{ matrix.shard }}/M`.

/// Why the shard cannot be found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("--shard auto: no cluster engine in the environment (SLURM_ARRAY_TASK_ID for a Slurm job array, JOB_COMPLETION_INDEX for a Kubernetes Indexed Job, CI_NODE_INDEX for GitLab CI parallel); elsewhere give --shard k/M")]
    NoEngine,
    #[error("--shard auto: more than one engine's variables are set ({0}); give --shard k/M")]
    Ambiguous(String),
    #[error("--shard auto: {var}={value:?} is not a whole number")]
    NotNumber { var: &'static str, value: String },
    #[error("--shard auto: {var} is not set ({why})")]
    Missing { var: &'static str, why: &'static str },
    #[error("--shard auto: {0}")]
    Inconsistent(String),
}

/// Which engine a shard came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Slurm,
    Kubernetes,
    GitLab,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Slurm => "Slurm job array",
            Engine::Kubernetes => "Kubernetes Indexed Job",
            Engine::GitLab => "GitLab CI parallel",
        }
    }
}

/// The shard `(k, M)` from the environment `env` (a lookup, so tests need
/// not touch the process's). `count` is `--shard-count`.
pub fn shard_from_env(env: impl Fn(&str) -> Option<String>, count: Option<u64>) -> Result<(Engine, u64, u64), ShardError> {
    let num = |var: &'static str| -> Result<Option<u64>, ShardError> {
        match env(var) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| ShardError::NotNumber { var, value: v }),
        }
    };
    let set: Vec<&str> = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX", "CI_NODE_INDEX"].into_iter().filter(|v| env(v).is_some()).collect();
    if set.len() > 1 {
        return Err(ShardError::Ambiguous(set.join(", ")));
    }
    let need = |var: &'static str, why: &'static str| move |o: Option<u64>| o.ok_or(ShardError::Missing { var, why });
    let (engine, k, m) = match set.first().copied() {
        None => return Err(ShardError::NoEngine),
        Some("SLURM_ARRAY_TASK_ID") => {
            let id = need("SLURM_ARRAY_TASK_ID", "")(num("SLURM_ARRAY_TASK_ID")?)?;
            let why = "sbatch --array sets it; is this a job array?";
            let min = need("SLURM_ARRAY_TASK_MIN", why)(num("SLURM_ARRAY_TASK_MIN")?)?;
            let max = need("SLURM_ARRAY_TASK_MAX", why)(num("SLURM_ARRAY_TASK_MAX")?)?;
            let n = need("SLURM_ARRAY_TASK_COUNT", why)(num("SLURM_ARRAY_TASK_COUNT")?)?;
            if max < min || id < min || id > max {
                return Err(ShardError::Inconsistent(format!("SLURM_ARRAY_TASK_ID={id} is outside SLURM_ARRAY_TASK_MIN..=MAX ({min}..={max})")));
            }
            if n != max - min + 1 {
                return Err(ShardError::Inconsistent(format!(
                    "the job array has {n} tasks over {min}-{max}: use a contiguous array without a step (--array={min}-{})",
                    min + n.saturating_sub(1)
                )));
            }
            (Engine::Slurm, id - min, n)
        }
        Some("JOB_COMPLETION_INDEX") => {
            let k = need("JOB_COMPLETION_INDEX", "")(num("JOB_COMPLETION_INDEX")?)?;
            let m = match count {
                Some(c) => c,
                None => need("CMAEMU_SHARD_COUNT", "a Kubernetes Indexed Job does not say its completions: give --shard-count N or set CMAEMU_SHARD_COUNT")(
                    num("CMAEMU_SHARD_COUNT")?,
                )?,
            };
            (Engine::Kubernetes, k, m)
        }
        Some(_) => {
            let i = need("CI_NODE_INDEX", "")(num("CI_NODE_INDEX")?)?;
            let n = need("CI_NODE_TOTAL", "GitLab sets it with parallel:")(num("CI_NODE_TOTAL")?)?;
            if i == 0 {
                return Err(ShardError::Inconsistent("CI_NODE_INDEX=0: GitLab numbers parallel jobs from 1".into()));
            }
            (Engine::GitLab, i - 1, n)
        }
    };
    if engine != Engine::Kubernetes && count.is_some_and(|c| c != m) {
        return Err(ShardError::Inconsistent(format!("--shard-count {} disagrees with the {}'s {m} tasks", count.unwrap_or(0), engine.name())));
    }
    if m == 0 || k >= m {
        return Err(ShardError::Inconsistent(format!("shard index {k} is not below the count {m} ({})", engine.name())));
    }
    Ok((engine, k, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn slurm_array() {
        let e = [("SLURM_ARRAY_TASK_ID", "7"), ("SLURM_ARRAY_TASK_MIN", "5"), ("SLURM_ARRAY_TASK_MAX", "8"), ("SLURM_ARRAY_TASK_COUNT", "4")];
        assert_eq!(shard_from_env(env(&e), None), Ok((Engine::Slurm, 2, 4)));
        let stepped = [("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_MAX", "6"), ("SLURM_ARRAY_TASK_COUNT", "4")];
        assert!(shard_from_env(env(&stepped), None).unwrap_err().to_string().contains("without a step"));
        let plain = [("SLURM_ARRAY_TASK_ID", "2")];
        assert!(shard_from_env(env(&plain), None).unwrap_err().to_string().contains("SLURM_ARRAY_TASK_MIN is not set"));
    }

    #[test]
    fn kubernetes_indexed_job() {
        let e = [("JOB_COMPLETION_INDEX", "3")];
        assert_eq!(shard_from_env(env(&e), Some(5)), Ok((Engine::Kubernetes, 3, 5)));
        let e2 = [("JOB_COMPLETION_INDEX", "3"), ("CMAEMU_SHARD_COUNT", "4")];
        assert_eq!(shard_from_env(env(&e2), None), Ok((Engine::Kubernetes, 3, 4)));
        assert!(shard_from_env(env(&e), None).unwrap_err().to_string().contains("--shard-count"));
        assert!(shard_from_env(env(&e), Some(3)).unwrap_err().to_string().contains("not below"));
    }

    #[test]
    fn gitlab_parallel_is_one_based() {
        let e = [("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "3")];
        assert_eq!(shard_from_env(env(&e), None), Ok((Engine::GitLab, 0, 3)));
        let e = [("CI_NODE_INDEX", "3"), ("CI_NODE_TOTAL", "3")];
        assert_eq!(shard_from_env(env(&e), None), Ok((Engine::GitLab, 2, 3)));
        let e = [("CI_NODE_INDEX", "x"), ("CI_NODE_TOTAL", "3")];
        assert!(shard_from_env(env(&e), None).unwrap_err().to_string().contains("\"x\""));
    }

    #[test]
    fn none_or_two_engines_are_errors() {
        assert_eq!(shard_from_env(env(&[]), None), Err(ShardError::NoEngine));
        let e = [("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "3"), ("JOB_COMPLETION_INDEX", "0")];
        assert!(matches!(shard_from_env(env(&e), Some(3)), Err(ShardError::Ambiguous(_))));
    }
}
