//! Where `pfn` finds models: the models directory and a model given by name (`gp-hyper`).
//!
//! The models directory is, in order:
//! 1. `$PFN_MODELS`, when that variable is set (then nothing else is searched);
//! 2. `models/` in the current directory;
//! 3. `models/` next to the executable or one of its ancestor directories (so that
//!    `target/release/pfn` finds the repository's `models/`).
//!
//! A model *name* is a file stem: `gp-hyper` is `gp-hyper.pfn` (or `gp-hyper.safetensors`) in the
//! first of these directories that has it. A `--model` value that names an existing file, has a
//! path separator or a file extension is used as a path.

use std::path::{Path, PathBuf};

/// The model `pfn predict` uses when `--model` is not given.
pub const DEFAULT_MODEL: &str = "gp-hyper";
/// Environment variable naming the models directory.
pub const MODELS_ENV: &str = "PFN_MODELS";
/// File extensions of model artifacts, in the order a name is looked up.
pub const MODEL_EXTENSIONS: [&str; 2] = ["pfn", "safetensors"];

/// A model or models directory that could not be found; the message lists where `pfn` looked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelSearchError {
    /// No file for a model name in any searched directory.
    #[error("no model '{name}' found: looked for {name}.pfn in {}; {}", join_dirs(.searched), hint(*.from_env))]
    ModelNotFound {
        /// The model name.
        name: String,
        /// The directories searched, in order.
        searched: Vec<PathBuf>,
        /// Whether the only directory came from `$PFN_MODELS`.
        from_env: bool,
    },
    /// None of the candidate models directories exists.
    #[error("no models directory found: looked for {}; {}", join_dirs(.searched), hint(*.from_env))]
    NoModelsDir {
        /// The directories tried, in order.
        searched: Vec<PathBuf>,
        /// Whether the only directory came from `$PFN_MODELS`.
        from_env: bool,
    },
}

fn join_dirs(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "nowhere (no current directory or executable path)".into();
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn hint(from_env: bool) -> String {
    if from_env {
        format!("{MODELS_ENV} is set, so only that directory is searched; pass --model FILE or fix {MODELS_ENV}")
    } else {
        format!("pass --model FILE, or set {MODELS_ENV} to the directory of the model files")
    }
}

/// The directories searched for models, in order (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSearch {
    dirs: Vec<PathBuf>,
    from_env: bool,
}

impl ModelSearch {
    /// The search order for this process: `$PFN_MODELS`, the current directory, the executable's
    /// ancestors.
    pub fn from_environment() -> Self {
        let env = std::env::var_os(MODELS_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let exe = std::env::current_exe().ok();
        Self::new(env, exe.as_deref())
    }

    /// The search order given the value of `$PFN_MODELS` and the executable's path. Directories
    /// relative to the current directory are kept relative (`models`), so messages stay short.
    pub fn new(env: Option<PathBuf>, exe: Option<&Path>) -> Self {
        if let Some(dir) = env {
            return Self {
                dirs: vec![dir],
                from_env: true,
            };
        }
        let mut dirs = vec![PathBuf::from("models")];
        if let Some(exe_dir) = exe.and_then(Path::parent) {
            for ancestor in exe_dir.ancestors() {
                let candidate = ancestor.join("models");
                if !dirs.contains(&candidate) {
                    dirs.push(candidate);
                }
            }
        }
        Self {
            dirs,
            from_env: false,
        }
    }

    /// The same search with `extra` directories appended (after the executable's ancestors), unless
    /// `$PFN_MODELS` was set, which stays the only directory. The Python package adds its bundled
    /// `models/` and the source checkout it was built from.
    pub fn with_extra_dirs(mut self, extra: impl IntoIterator<Item = PathBuf>) -> Self {
        if !self.from_env {
            for dir in extra {
                if !self.dirs.contains(&dir) {
                    self.dirs.push(dir);
                }
            }
        }
        self
    }

    /// The candidate directories, in search order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The first candidate directory that exists.
    pub fn models_dir(&self) -> Result<PathBuf, ModelSearchError> {
        self.dirs
            .iter()
            .find(|d| d.is_dir())
            .cloned()
            .ok_or_else(|| ModelSearchError::NoModelsDir {
                searched: self.dirs.clone(),
                from_env: self.from_env,
            })
    }

    /// The file of the model called `name` (`<name>.pfn` or `<name>.safetensors`) in the first
    /// candidate directory that has one.
    pub fn find_model(&self, name: &str) -> Result<PathBuf, ModelSearchError> {
        for dir in &self.dirs {
            for ext in MODEL_EXTENSIONS {
                let file = dir.join(format!("{name}.{ext}"));
                if file.is_file() {
                    return Ok(file);
                }
            }
        }
        Err(ModelSearchError::ModelNotFound {
            name: name.to_string(),
            searched: self.dirs.clone(),
            from_env: self.from_env,
        })
    }

    /// The model file for a `--model` value: an existing file, or a value with a path separator or
    /// an extension, is a path; any other value is a model name looked up with
    /// [`ModelSearch::find_model`]; no value means [`DEFAULT_MODEL`].
    pub fn resolve(&self, model: Option<&str>) -> Result<PathBuf, ModelSearchError> {
        let Some(value) = model else {
            return self.find_model(DEFAULT_MODEL);
        };
        let path = Path::new(value);
        if path.is_file() || !is_model_name(value) {
            return Ok(path.to_path_buf());
        }
        self.find_model(value)
    }
}

/// Whether `value` is a bare model name: non-empty, no path separator, no extension, not `.`/`..`.
pub fn is_model_name(value: &str) -> bool {
    !value.is_empty()
        && value != "."
        && value != ".."
        && !value.contains('/')
        && !value.contains(std::path::MAIN_SEPARATOR)
        && Path::new(value).extension().is_none()
}

/// Whether `path` has one of the [`MODEL_EXTENSIONS`].
pub fn has_model_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| MODEL_EXTENSIONS.contains(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("pfn-model-search-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn names_and_paths_are_told_apart() {
        assert!(is_model_name("gp-hyper"));
        assert!(is_model_name("gp-1d"));
        assert!(!is_model_name("gp-1d.pfn"));
        assert!(!is_model_name("models/gp-1d"));
        assert!(!is_model_name(""));
        assert!(!is_model_name(".."));
        assert!(has_model_extension(Path::new("a/b.pfn")));
        assert!(has_model_extension(Path::new("b.safetensors")));
        assert!(!has_model_extension(Path::new("b.pfn.ckpt")));
    }

    #[test]
    fn the_environment_variable_is_the_only_directory_when_set() {
        let s = ModelSearch::new(
            Some(PathBuf::from("/x/y")),
            Some(Path::new("/a/b/target/release/pfn")),
        );
        assert_eq!(s.dirs(), [PathBuf::from("/x/y")]);
        let err = s.find_model("gp-hyper").unwrap_err().to_string();
        assert!(
            err.contains("no model 'gp-hyper' found")
                && err.contains("gp-hyper.pfn in /x/y")
                && err.contains("PFN_MODELS is set"),
            "{err}"
        );
    }

    #[test]
    fn extra_directories_come_last_and_never_beside_the_environment_variable() {
        let extra = [PathBuf::from("/pkg/models"), PathBuf::from("models")];
        let s = ModelSearch::new(None, None).with_extra_dirs(extra.clone());
        assert_eq!(
            s.dirs(),
            [PathBuf::from("models"), PathBuf::from("/pkg/models")]
        );
        let env = ModelSearch::new(Some(PathBuf::from("/x")), None).with_extra_dirs(extra);
        assert_eq!(env.dirs(), [PathBuf::from("/x")]);
    }

    #[test]
    fn without_the_variable_cwd_then_the_executables_ancestors_are_searched() {
        let s = ModelSearch::new(None, Some(Path::new("/a/b/target/release/pfn")));
        let want: Vec<PathBuf> = [
            "models",
            "/a/b/target/release/models",
            "/a/b/target/models",
            "/a/b/models",
            "/a/models",
            "/models",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(s.dirs(), want.as_slice());
        let none = ModelSearch::new(None, None);
        assert_eq!(none.dirs(), [PathBuf::from("models")]);
    }

    #[test]
    fn a_name_resolves_to_the_first_directory_that_has_it() {
        let root = temp("resolve");
        let first = root.join("first");
        let second = root.join("second");
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        std::fs::write(second.join("gp-hyper.pfn"), b"x").unwrap();
        std::fs::write(first.join("other.safetensors"), b"x").unwrap();
        let s = ModelSearch {
            dirs: vec![root.join("missing"), first.clone(), second.clone()],
            from_env: false,
        };
        assert_eq!(s.resolve(None).unwrap(), second.join("gp-hyper.pfn"));
        assert_eq!(
            s.resolve(Some("other")).unwrap(),
            first.join("other.safetensors")
        );
        assert_eq!(s.models_dir().unwrap(), first);
        // A path is used as given, even when it does not exist (loading then names it).
        assert_eq!(
            s.resolve(Some("nowhere/m.pfn")).unwrap(),
            PathBuf::from("nowhere/m.pfn")
        );
        let err = s.resolve(Some("absent")).unwrap_err().to_string();
        assert!(err.contains("no model 'absent' found"), "{err}");
        assert!(err.contains(&second.display().to_string()), "{err}");
        assert!(err.contains("set PFN_MODELS"), "{err}");
        let nothing = ModelSearch {
            dirs: vec![root.join("missing")],
            from_env: false,
        };
        let err = nothing.models_dir().unwrap_err().to_string();
        assert!(err.contains("no models directory found") && err.contains("missing"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
