//! nix/images.nix: an image's tag names its bytes, so nothing that changes
//! per commit may be in the image configuration (a revision label re-tagged,
//! re-pushed and rolled every service on every commit). The stand-in's
//! streamLayeredImage hashes the configuration and contents into the tag, as
//! nixpkgs' tag is the hash of the configuration derivation.

use flake_tests::harness;

fn evaluated(attribute: &str, rev: &str) -> String {
    harness::eval_json(attribute, &[("rev", rev)])
        .as_str()
        .expect("a path")
        .to_owned()
}

#[test]
fn image_tags_do_not_change_with_the_commit() {
    let manifest = "flake.packages.x86_64-linux.image-manifest.outPath";
    let first = evaluated(manifest, "1111111111111111111111111111111111111111");
    let second = evaluated(manifest, "2222222222222222222222222222222222222222");
    assert_eq!(
        first, second,
        "the image manifest (name -> tag) depends on the commit"
    );

    // The revision is still recorded, beside the images.
    let images = "flake.packages.x86_64-linux.images.outPath";
    assert_ne!(
        evaluated(images, "1111111111111111111111111111111111111111"),
        evaluated(images, "2222222222222222222222222222222222222222"),
        "the images directory no longer records the revision"
    );
}
