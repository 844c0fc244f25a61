# Sourced by run.sh and test.sh: pick the host cargo (rustup's if present,
# else Debian's cargo-web, which builds the host crates as well).
if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        export PATH="/usr/bin:$PATH"
    fi
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
