//! `pfn classify-images`: few-shot classification of a folder of images with an image model such as
//! `strokes` (issue 19), given a few labelled examples.
//!
//! The labelled examples are the subfolders of `--train`, one per class (the folder name is the
//! class). `--test` holds the images to classify: files directly in it, or subfolders named after
//! the classes, whose images are then labelled and scored. Every PNG is read as gray values and
//! area-averaged to the model's square image size. Images on a light background (black-on-white,
//! as scanned characters) are inverted, so that ink is bright on 0 as in the stroke prior (`--invert
//! auto` decides by the mean of the border pixels). The model sees the training images as its
//! context, in the order of the folders, which does not matter: the PFN has no positional encoding.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use pfn_artifact::OutputHead;
use pfn_experiments::omniglot::{decode_gray_png, downsample_area};
use pfn_infer::Predictor;

use crate::model_search::ModelSearch;

/// Arguments of `pfn classify-images`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model name or file (default: strokes).
    #[arg(long, default_value = "strokes")]
    pub model: String,
    /// Folder of labelled examples: one subfolder of PNG images per class.
    #[arg(long)]
    pub train: PathBuf,
    /// Folder of images to classify: PNG files, or one subfolder per class (then scored).
    #[arg(long)]
    pub test: PathBuf,
    /// Where to write the predictions as CSV (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Invert gray values (`yes`, `no`, or `auto`: invert images whose border is light).
    #[arg(long, default_value = "auto", value_parser = ["auto", "yes", "no"])]
    pub invert: String,
}

/// One image as the model sees it.
struct Image {
    path: PathBuf,
    pixels: Vec<f64>,
    label: Option<usize>,
}

/// Runs the subcommand.
pub fn run(args: &Args) -> Result<()> {
    let path = ModelSearch::from_environment().resolve(Some(&args.model))?;
    let predictor = Predictor::load(&path)?;
    let n_out = match predictor.head() {
        OutputHead::Classes { n_out } => *n_out,
        _ => bail!(
            "{}: a regression model; classify-images needs a classification model of images (e.g. strokes)",
            path.display()
        ),
    };
    let features = predictor.num_features();
    let side = (features as f64).sqrt().round() as usize;
    if side * side != features {
        bail!(
            "{}: the model takes {features} features, not a square image",
            path.display()
        );
    }

    let classes = subfolders(&args.train)?;
    if classes.is_empty() {
        bail!(
            "{}: no class subfolders (put each class's example images in a folder named after the class)",
            args.train.display()
        );
    }
    if classes.len() > n_out {
        bail!(
            "{}: {} classes, but {} tells at most {n_out} apart",
            args.train.display(),
            classes.len(),
            path.display()
        );
    }
    let mut context = Vec::new();
    for (k, class) in classes.iter().enumerate() {
        let images = read_folder(&args.train.join(class), side, &args.invert, Some(k))?;
        if images.is_empty() {
            bail!(
                "{}: no PNG images for class '{class}'",
                args.train.join(class).display()
            );
        }
        context.extend(images);
    }
    let test_classes = subfolders(&args.test)?;
    let mut queries = Vec::new();
    if test_classes.is_empty() {
        queries = read_folder(&args.test, side, &args.invert, None)?;
    } else {
        for class in &test_classes {
            let Some(k) = classes.iter().position(|c| c == class) else {
                bail!(
                    "{}: class '{class}' has no examples in {}",
                    args.test.join(class).display(),
                    args.train.display()
                );
            };
            queries.extend(read_folder(
                &args.test.join(class),
                side,
                &args.invert,
                Some(k),
            )?);
        }
    }
    if queries.is_empty() {
        bail!("{}: no PNG images to classify", args.test.display());
    }
    let trained = predictor.metadata().max_context();
    if context.len() != trained {
        eprintln!(
            "note: {} example images; {} was trained with {trained} (5 per class for 5 classes), so its answers are less certain to transfer",
            context.len(),
            path.display()
        );
    }

    let x: Vec<f64> = context.iter().flat_map(|i| i.pixels.clone()).collect();
    let y: Vec<f64> = context
        .iter()
        .map(|i| i.label.unwrap_or(0) as f64)
        .collect();
    let q: Vec<f64> = queries.iter().flat_map(|i| i.pixels.clone()).collect();
    let probs = predictor
        .context(&x, &y)?
        .class_probabilities(&q, classes.len())?;

    let mut csv = format!(
        "file,{},predicted\n",
        classes
            .iter()
            .map(|c| format!("p_{}", csv_field(c)))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut correct = 0;
    let mut labelled = 0;
    for (img, p) in queries.iter().zip(probs.chunks(classes.len())) {
        let best = argmax(p);
        if let Some(k) = img.label {
            labelled += 1;
            correct += usize::from(k == best);
        }
        csv.push_str(&format!(
            "{},{},{}\n",
            csv_field(&img.path.display().to_string()),
            p.iter()
                .map(|v| format!("{v:.6}"))
                .collect::<Vec<_>>()
                .join(","),
            csv_field(&classes[best])
        ));
    }
    match &args.out {
        Some(out) => {
            pfn_artifact::write_atomically(out, |f| {
                use std::io::Write;
                f.write_all(csv.as_bytes())
            })
            .with_context(|| format!("{}: cannot write the predictions", out.display()))?;
            println!(
                "{} images classified into {} classes with {} examples: {}",
                queries.len(),
                classes.len(),
                context.len(),
                out.display()
            );
        }
        None => print!("{csv}"),
    }
    if labelled > 0 {
        eprintln!(
            "accuracy on the labelled test images: {:.3} ({correct} of {labelled})",
            correct as f64 / labelled as f64
        );
    }
    Ok(())
}

fn argmax(p: &[f64]) -> usize {
    p.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The names of the subfolders of `dir`, sorted.
fn subfolders(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the folder", dir.display()))?
    {
        let entry = entry.with_context(|| format!("{}: cannot read the folder", dir.display()))?;
        if entry.path().is_dir() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The PNG images directly in `dir` (sorted by name), as `side x side` model inputs.
fn read_folder(dir: &Path, side: usize, invert: &str, label: Option<usize>) -> Result<Vec<Image>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the folder", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes =
                std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
            let (gray, h, w) =
                decode_gray_png(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let invert = match invert {
                "yes" => true,
                "no" => false,
                _ => border_mean(&gray, h, w) > 0.5,
            };
            let pixels = downsample_area(&gray, h, w, side)
                .into_iter()
                .map(|v| if invert { 1.0 - v } else { v }.clamp(0.0, 1.0))
                .collect();
            Ok(Image {
                path,
                pixels,
                label,
            })
        })
        .collect()
}

/// The mean gray value of the outermost pixels: the background's brightness.
fn border_mean(gray: &[f64], h: usize, w: usize) -> f64 {
    let mut sum = 0.0;
    let mut n = 0usize;
    for r in 0..h {
        for c in 0..w {
            if r == 0 || c == 0 || r + 1 == h || c + 1 == w {
                sum += gray[r * w + c];
                n += 1;
            }
        }
    }
    sum / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_border_decides_the_background() {
        // A 4 x 4 white image with a dark centre: light border, so ink is dark.
        let mut g = vec![1.0; 16];
        g[5] = 0.0;
        g[6] = 0.0;
        assert!(border_mean(&g, 4, 4) > 0.5);
        let inverted: Vec<f64> = g.iter().map(|v| 1.0 - v).collect();
        assert!(border_mean(&inverted, 4, 4) < 0.5);
        assert_eq!(argmax(&[0.1, 0.7, 0.2]), 1);
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
