-- HNSW (cosine) in place of the original IVFFlat index: IVFFlat built on an
-- empty table has useless centroids, so its recall was poor; HNSW needs no
-- training and keeps its recall as rows arrive.

drop index if exists idx_catalog_item_embeddings_vector;

create index if not exists idx_catalog_item_embeddings_hnsw
    on catalog_item_embeddings
    using hnsw (embedding vector_cosine_ops);
