//! Prints what `adn metrics` will print, before the `adn` binary wires it up:
//! `cargo run -p adn-metrics --example report -- SCORES.csv` for one file,
//! `cargo run -p adn-metrics --example report -- A.csv B.csv` to compare two.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = if args.len() == 1 {
        adn_metrics::report_scores_file(std::path::Path::new(&args[0]))
    } else {
        adn_metrics::compare_scores_files(
            std::path::Path::new(&args[0]),
            std::path::Path::new(&args[1]),
        )
    };
    match out {
        Ok(s) => print!("{s}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1)
        }
    }
}
