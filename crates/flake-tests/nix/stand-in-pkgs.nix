# A stand-in for the nixpkgs package set the flake's modules use, for
# crates/flake-tests: every package is a directory of this machine's programs
# (prepared by the harness, `machine.packages`), and the builders the modules
# call are small raw derivations that Nix builds here with /bin/bash, the
# sandbox off. Each builder follows the nixpkgs function it stands in for
# (pkgs/build-support/trivial-builders: runCommand, writeText,
# writeShellApplication, linkFarm; dockerTools.streamLayeredImage) in what the
# modules rely on: argument names, `passAsFile`, `$out`, where the program
# lands, `set -o errexit nounset pipefail`, the build-time `bash -n` and
# shellcheck of writeShellApplication.
#
# What is not this machine's to build (crane's cargo builds, the musl Lambda,
# real store closures) is a derivation that fails with the reason, marked
# `standInNotRun`, which the harness reports and never builds.
{
  lib,
  machine,
}: let
  inherit (machine) system bash;

  # The programs stdenv puts on every build's PATH (coreutils, findutils,
  # diffutils, sed, grep, awk, tar, gzip, ...).
  stdenvPath = machine.stdenvBin;

  missingOf = tools: lib.concatMap (t: lib.optional (t ? standInMissing) t.standInMissing) tools;

  # A derivation that runs `script` with bash, `tools` on PATH before stdenv's.
  mkDerivation = {
    name,
    script,
    tools ? [],
    env ? {},
  }: let
    notRunInputs = lib.filter (v: lib.isAttrs v && v ? standInNotRun) (lib.attrValues env);
  in
    derivation ({
        inherit name system;
        builder = bash;
        args = [
          "-c"
          ''
            set -eu -o pipefail
            export HOME=/homeless-shelter
            ${script}
            # Keeps bash from exec-ing the script's last command: Nix 2.8
            # building without build users SIGKILLs such a builder as it exits.
            wait
          ''
        ];
        PATH = lib.concatStringsSep ":" (map (t: "${t}/bin") tools ++ [stdenvPath]);
      }
      // env)
    // {
      missingTools = missingOf tools;
    }
    # A derivation that needs one the stand-in does not build is not built either.
    // lib.optionalAttrs (notRunInputs != []) {standInNotRun = (lib.head notRunInputs).standInNotRun;};

  notRun = name: reason:
    mkDerivation {
      inherit name;
      script = ''
        echo ${lib.escapeShellArg "not built by the stand-in: ${reason}"} >&2
        exit 1
      '';
    }
    // {standInNotRun = reason;};

  runCommand = name: env: script:
    mkDerivation {
      inherit name script;
      tools = env.nativeBuildInputs or [];
      env = removeAttrs env ["nativeBuildInputs" "meta" "passthru"];
    };

  writeText = name: text:
    mkDerivation {
      inherit name;
      env = {
        inherit text;
        passAsFile = ["text"];
      };
      script = ''cp "$textPath" "$out"'';
    };

  # nixpkgs: the script is `#!runtimeShell`, one `set -o` per bash option,
  # PATH prefixed with the runtime inputs' bin directories, then the text; the
  # check phase runs `bash -n` and shellcheck on it.
  writeShellApplication = {
    name,
    text,
    runtimeInputs ? [],
    ...
  }:
    mkDerivation {
      inherit name;
      tools = [packages.shellcheck];
      env = {
        passAsFile = ["script"];
        script =
          ''
            #!${bash}
            set -o errexit
            set -o nounset
            set -o pipefail
          ''
          + lib.optionalString (runtimeInputs != []) ''

            export PATH="${lib.makeBinPath runtimeInputs}:$PATH"
          ''
          + ''

            ${text}
          '';
      };
      script = ''
        target=$out/bin/${name}
        mkdir -p "$out/bin"
        cp "$scriptPath" "$target"
        chmod +x "$target"
        ${bash} -n -O extglob "$target"
        shellcheck "$target"
      '';
    }
    // {
      meta.mainProgram = name;
      standInMissingRuntime = missingOf runtimeInputs;
    };

  linkFarm = name: entries:
    mkDerivation {
      inherit name;
      script =
        ''
          mkdir -p "$out"
        ''
        + lib.concatMapStrings (e: ''
          mkdir -p "$(dirname "$out/${e.name}")"
          ln -s ${e.path} "$out/${e.name}"
        '')
        entries;
    };

  # A docker archive of one layer (the contents and `extraCommands` in a
  # root directory) and the image configuration; the "stream" script prints
  # it, as nixpkgs' stream script prints its archive. `imageTag` is a hash of
  # what goes in, as nixpkgs' is of the configuration derivation.
  streamLayeredImage = {
    name,
    contents ? [],
    extraCommands ? "",
    config ? {},
    ...
  } @ args: let
    imageTag = builtins.substring 0 32 (builtins.hashString "sha256" (builtins.toJSON {
      inherit name config extraCommands;
      contents = map toString contents;
    }));
    archive = mkDerivation {
      name = "${name}-archive";
      tools = [packages.jq];
      env = {
        imageConfig = builtins.toJSON config;
        passAsFile = ["imageConfig"];
      };
      script = ''
        mkdir root
        ${lib.concatMapStrings (c: "cp -rL --no-preserve=mode ${c}/. root/\n") contents}
        (cd root && ${extraCommands})
        tar --sort=name --mtime=@1 --owner=0 --group=0 -C root -cf layer.tar .
        layer=$(sha256sum layer.tar | cut -d' ' -f1)
        mkdir "$layer"
        mv layer.tar "$layer/layer.tar"
        jq -c --arg diff "sha256:$layer" \
          '{architecture: "amd64", os: "linux", config: ., rootfs: {type: "layers", diff_ids: [$diff]}}' \
          "$imageConfigPath" >config.json
        config=$(sha256sum config.json | cut -d' ' -f1)
        mv config.json "$config.json"
        jq -n -c --arg config "$config.json" --arg layer "$layer/layer.tar" --arg tag ${lib.escapeShellArg "${name}:${imageTag}"} \
          '[{Config: $config, RepoTags: [$tag], Layers: [$layer]}]' >manifest.json
        mkdir "$out"
        tar -cf "$out/image.tar" manifest.json "$config.json" "$layer"
      '';
    };
  in
    mkDerivation {
      name = "stream-${name}";
      script = ''
        printf '#!%s\nexec cat %s/image.tar\n' ${bash} ${archive} >"$out"
        chmod +x "$out"
      '';
    }
    // {
      inherit imageTag;
      passthru = args;
    };

  caCertificates = mkDerivation {
    name = "ca-certificates";
    script = ''
      mkdir -p "$out/etc/ssl/certs"
      cp ${machine.caBundle} "$out/etc/ssl/certs/ca-bundle.crt"
    '';
  };

  # Each nixpkgs package the modules name: a directory of this machine's
  # programs, or a marker naming what is missing here.
  packages =
    lib.mapAttrs (name: dir: let
      package = {
        inherit name;
        # What lib.isDerivation looks for (lib.getExe' asserts it).
        type = "derivation";
        outPath = dir;
        meta.mainProgram = machine.mainPrograms.${name} or name;
        # Outputs other than the default (dev-tools.toml `output`), one
        # directory here: e.g. `prometheus.cli`, where nixpkgs puts promtool.
        cli = package;
      };
    in
      package)
    machine.packages
    // lib.genAttrs machine.missing (name: {
      inherit name;
      outPath = "/nonexistent/${name}";
      standInMissing = name;
    });

  python3 =
    packages.python3
    // {
      withPackages = select: let
        # Evaluates the selection against the attribute names nixpkgs has.
        chosen = select {
          moto = {
            pname = "moto";
            optional-dependencies.server = [{pname = "moto-server-extras";}];
          };
        };
      in
        assert lib.all (p: p ? pname) chosen; packages.python-with-moto;
    };
in
  packages
  // {
    inherit runCommand writeText writeShellApplication linkFarm python3;
    inherit lib system;
    stdenv = {
      hostPlatform = lib.systems.elaborate system;
      cc = packages.cc;
    };
    writeClosure = paths: notRun "closure" "real store closures (the images-without-shell check)" // {inherit paths;};
    dockerTools = {inherit streamLayeredImage caCertificates;};
    standIn = {inherit notRun mkDerivation;};
  }
