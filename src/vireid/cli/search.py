"""``vireid search``: rank a gallery index for query images; writes results.json and ranked-list pictures."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("search", help="rank a gallery index for query images (results.json + pictures)",
                       description=__doc__.split(": ", 1)[1] + " Distances are Euclidean between L2-normalised "
                       "features; green/red frames mark correct/wrong matches where the paths carry identities.")
    p.add_argument("--checkpoint", required=True, help="the checkpoint (file or run directory) that built the index")
    p.add_argument("--index", required=True, help="index file written by vireid index")
    p.add_argument("--query", required=True, nargs="+", help="query image files or folders (folders: every image under them)")
    p.add_argument("--top-k", type=int, default=10, help="gallery images per query (default 10)")
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking of the results")
    p.add_argument("--backend", choices=("exact", "faiss"), default="exact",
                   help="exact: chunked matrix product (default); faiss: faiss-cpu's exact inner-product index")
    p.add_argument("--query-modality", choices=("visible", "infrared", "auto"), default="auto",
                   help="modality of the queries (auto: dataset layout, else three equal channels = infrared)")
    p.add_argument("--images", help="folder the index's paths are relative to, if it has moved (for the pictures)")
    p.add_argument("--no-pictures", dest="pictures", action="store_false", help="write results.json only")
    p.add_argument("--out", required=True, help="output folder (results.json, ranked/*.png)")
    p.add_argument("--overwrite", action="store_true", help="replace a previous vireid search folder")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, help="query images per batch (default: the checkpoint's test.batch_size)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from vireid.inference.index import load_index
    from vireid.inference.model import ReIDModel
    from vireid.inference.search import check_search_output, expand_queries, search_index, write_search_output

    # Cheap checks first: the output folder, the queries, the index; then the model.
    check_search_output(args.out, args.overwrite)
    expand_queries(args.query)
    index = load_index(args.index)
    model = ReIDModel.load(args.checkpoint, args.device)
    results = search_index(model, index, args.query, top_k=args.top_k, rerank=args.rerank, backend=args.backend,
                           modality=args.query_modality, batch_size=args.batch_size)
    path = write_search_output(results, args.out, index, images_root=args.images, pictures=args.pictures,
                               overwrite=args.overwrite,
                               extra={"top_k": args.top_k, "rerank": args.rerank, "backend": args.backend})
    pics = " and one ranked-list picture per query" if args.pictures else ""
    print(f"{len(results)} queries ranked against {len(index)} gallery images: {path}{pics}")
    return 0
