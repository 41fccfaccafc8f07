import nbformat as nbf, sys

def make(cells, path):
    nb = nbf.v4.new_notebook()
    out = []
    for i, (kind, src) in enumerate(cells):
        src = src.strip("\n")
        if kind == "md":
            out.append(nbf.v4.new_markdown_cell(src))
        else:
            c = nbf.v4.new_code_cell(src)
            if kind == "params":
                c.metadata["tags"] = ["parameters"]
            out.append(c)
    nb.cells = out
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, c in enumerate(nb.cells):
        c["id"] = f"c{i:02d}"
    nbf.write(nb, path)
