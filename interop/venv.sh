# Sourced by the interop scripts: the virtualenv with the pinned Python stack
# (interop/requirements.txt), made once in target/interop/venv; sets $venv.
venv=target/interop/venv
if [ ! -x "$venv/bin/python" ] || ! cmp -s interop/requirements.txt "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r interop/requirements.txt
  cp interop/requirements.txt "$venv/requirements.txt"
fi
