"""The bundle spec as data: the manifest's JSON Schema (read by edgerec.runtime.schema).

spec/ also holds the normative device text (README.md) and the golden cases
(golden/); only the schema ships in the package.
"""
