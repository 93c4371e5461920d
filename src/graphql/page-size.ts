// Page sizes, apart from the pagination helpers so that the builder and the limits can use them too.

/** Most rows one connection returns: `first`/`last` above it are refused. */
export const MAX_PAGE_SIZE = 500;

/** Rows returned when neither `first` nor `last` is given. */
export const DEFAULT_PAGE_SIZE = 50;
