# The README's two set-up commands (both create .venv on first use; see scripts/setup.sh for the settings):
#   make heal   install torch (CPU wheel) + sketchheal into .venv and heal the shipped examples into healed/
#   make test   install the test, demo and browser extras (+ Chromium) and run the test suite
# Plus: make install (the package only), make clean (remove .venv and healed/).

.PHONY: heal test install clean

heal:
	bash scripts/setup.sh heal

test:
	bash scripts/setup.sh test

install:
	bash scripts/setup.sh install

clean:
	rm -rf .venv healed
