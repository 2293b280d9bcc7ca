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

/// The task definitions run the services with `PGSSLMODE=verify-full` and
/// `PGSSLROOTCERT` at this path (nix/aws/database.nix `caBundle.imagePath`):
/// without the file in the image, no service could reach the database.
const IMAGE_CA_BUNDLE: &str = "etc/ssl/certs/rds-ca-bundle.pem";

#[test]
fn every_image_carries_the_rds_ca_bundle_the_task_definitions_name() {
    let root = infra_tests::repo_root();
    let bundle = std::fs::read(root.join("nix/aws/rds-ca-bundle.pem")).expect("the bundle");
    for environment in ["staging", "production"] {
        let render =
            std::fs::read_to_string(root.join(format!("infra/{environment}/main.tf.json")))
                .expect("render");
        assert!(
            render.contains(&format!("/{IMAGE_CA_BUNDLE}")),
            "infra/{environment} no longer names /{IMAGE_CA_BUNDLE}: update this test and nix/images.nix together"
        );
    }
    for name in ["api", "web", "migrate"] {
        let drv = harness::eval_json(
            &format!("flake.packages.x86_64-linux.image-{name}.drvPath"),
            &[],
        );
        let drv = drv.as_str().expect("a derivation path").to_owned();
        let built = harness::realise(&[drv]).unwrap_or_else(|log| panic!("image-{name}:\n{log}"));
        assert_eq!(
            image_file(&built[0], IMAGE_CA_BUNDLE).as_deref(),
            Some(bundle.as_slice()),
            "image-{name} does not hold nix/aws/rds-ca-bundle.pem at /{IMAGE_CA_BUNDLE}"
        );
    }
}

/// The bytes of `path` in the image its stream script prints (a docker
/// archive), from whichever layer holds it.
fn image_file(stream: &std::path::Path, path: &str) -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let archive = dir.path().join("image.tar");
    let output = std::process::Command::new(stream)
        .output()
        .expect("run the stream script");
    assert!(output.status.success(), "{} failed", stream.display());
    std::fs::write(&archive, output.stdout).expect("write the archive");
    tar(&[
        "-xf",
        archive.to_str().unwrap(),
        "-C",
        dir.path().to_str().unwrap(),
    ]);
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("manifest.json")).expect("manifest.json"),
    )
    .expect("manifest JSON");
    manifest[0]["Layers"].as_array()?.iter().find_map(|layer| {
        let layer = dir.path().join(layer.as_str()?);
        let output = std::process::Command::new("tar")
            .args(["-xOf", layer.to_str()?, &format!("./{path}")])
            .output()
            .ok()?;
        output.status.success().then_some(output.stdout)
    })
}

fn tar(args: &[&str]) {
    let status = std::process::Command::new("tar")
        .args(args)
        .status()
        .expect("tar");
    assert!(status.success(), "tar {args:?}");
}
