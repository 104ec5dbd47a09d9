from setuptools import find_packages, setup

setup(
    name="rnaloc-tools",
    version="0.1.0",
    description="Predict lncRNA, miRNA and circRNA subcellular localization from sequence (RNALoc-LM)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["rnaloc_tools", "rnaloc_tools.*"]),
    package_data={"rnaloc_tools": ["models/*.onnx", "models/*.json"]},
    include_package_data=True,
    install_requires=[
        "click>=8.1",
        "numpy>=1.24",
        "pandas>=2.0",
        "biopython>=1.80",
        "torch>=2.1",
        "rna-fm>=0.2.2",
        "onnx>=1.15",
        "scikit-learn>=1.3",
        "scipy>=1.10",
        "matplotlib>=3.7",
        "logomaker>=0.8",
        "tqdm>=4.60",
        "safetensors>=0.4",  # RNA-FM weights in the Hugging Face format (multimolecule/rnafm), read without pickle
    ],
    extras_require={
        # onnxruntime and onnxruntime-gpu cannot be installed together: choose one.
        "cpu": ["onnxruntime>=1.17"],
        "gpu": ["onnxruntime-gpu>=1.17"],
        "test": [
            "pytest>=7",
            "onnxruntime>=1.17",
            "pymemesuite>=0.1.0a4",  # MEME suite's own motif parser and FIMO, for the motifs tests
            "snakemake>=8; python_version>='3.11'",  # the sharded workflow in workflows/snakemake
            "multimolecule>=0.2.2",  # the reference implementation the Hugging Face RNA-FM loader is tested against
        ],
    },
    entry_points={"console_scripts": ["rnaloc=rnaloc_tools.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Bio-Informatics",
        "Environment :: Console",
    ],
)
