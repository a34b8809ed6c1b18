# Sourced by the interop scripts: the virtualenv with the pinned Python stack,
# made once and remade when its requirements change; sets $venv.
#   default:            target/interop/venv      from interop/requirements.txt (mcp 1.20.0)
#   MCPSIM_RELEASE=2.3: target/interop/venv-2.3  from interop/requirements-2.3.txt (mcp 2.3.0)
if [ "${MCPSIM_RELEASE:-}" = "2.3" ]; then
  venv=target/interop/venv-2.3
  requirements=interop/requirements-2.3.txt
else
  venv=target/interop/venv
  requirements=interop/requirements.txt
fi
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
fi
