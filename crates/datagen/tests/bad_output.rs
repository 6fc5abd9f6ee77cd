//! `make` never loses what is already written, and refuses bad options before writing.

use std::fs;

use adn_datagen::{MakeKind, MakeOptions, make};
use adn_datasets::{DatasetError, DatasetKind};

#[test]
fn make_never_overwrites_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    // The user's own folder where a category would go.
    let mine = dir.path().join("die-logic");
    fs::create_dir_all(&mine).unwrap();
    fs::write(mine.join("precious.txt"), "keep me").unwrap();
    let opts = MakeOptions {
        size: Some(32),
        per_split: Some(1),
        ..MakeOptions::default()
    };
    let err = make(MakeKind::SyntheticWafer, dir.path(), &opts).unwrap_err();
    assert!(matches!(err, DatasetError::AlreadyExists { .. }), "{err:?}");
    assert!(err.to_string().contains("die-logic"), "{err}");
    assert_eq!(
        fs::read_to_string(mine.join("precious.txt")).unwrap(),
        "keep me"
    );
    // An output path that is a file.
    let file = dir.path().join("out.txt");
    fs::write(&file, "x").unwrap();
    let err = make(MakeKind::SyntheticMvtec, &file, &opts).unwrap_err();
    assert!(err.to_string().contains("out.txt"), "{err}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "x");
    // Bad options are refused before anything is written.
    let err = make(
        MakeKind::SyntheticMvtec,
        &dir.path().join("new"),
        &MakeOptions {
            per_split: Some(0),
            ..MakeOptions::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("per-split"), "{err}");
    assert!("synthetic-nothing".parse::<MakeKind>().is_err());
    assert!("tiff".parse::<DatasetKind>().is_err());
}
