#!/bin/sh
# The image's wheels, built the one way both deploy/Dockerfile and tests/test_docker_image.py
# build them (so the test cannot drift from the image):
#
#   sh deploy/build-wheels.sh deps    OUT_DIR [pip options]   the dependencies in pyproject.toml
#                                                             (and the web extra's: the dashboard)
#   sh deploy/build-wheels.sh project OUT_DIR [pip options]   this project, without them
#
# Run from the project's root. The project wheel holds the packages pyproject.toml lists
# ([tool.setuptools.packages.find]), the one list of what ships: no folder is named twice.
set -eu
what=$1
out=$2
shift 2
case "$what" in
    deps)
        python -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb')); \
p = d['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['web']))" \
            > "${TMPDIR:-/tmp}/agora-requirements.txt"
        pip wheel --wheel-dir "$out" "$@" -r "${TMPDIR:-/tmp}/agora-requirements.txt"
        ;;
    project)
        pip wheel --no-deps --wheel-dir "$out" "$@" .
        ;;
    *)
        echo "usage: build-wheels.sh deps|project OUT_DIR [pip options]" >&2
        exit 2
        ;;
esac
