//! `adn metrics`: image-level metrics of a score file, or two compared.

use std::path::PathBuf;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Score file to report on.
    #[arg(long, conflicts_with = "compare", required_unless_present = "compare")]
    scores: Option<PathBuf>,
    /// Two score files (variant A, variant B) to compare with DeLong's test.
    #[arg(long, num_args = 2, value_names = ["A", "B"])]
    compare: Option<Vec<PathBuf>>,
}

pub fn command(args: Args) -> Result<()> {
    let report = match (args.scores, args.compare) {
        (Some(path), _) => adn_metrics::report_scores_file(&path)?,
        (None, Some(pair)) => adn_metrics::compare_scores_files(&pair[0], &pair[1])?,
        (None, None) => unreachable!("clap requires one of them"),
    };
    print!("{report}");
    Ok(())
}
