// Pure helpers of the dataset review entry (no ComfyUI imports, so node --test can load them).
export const REVIEW_ROUTE = "/spatialscore/review/";
export const FOLDER_KEY = "SpatialScore.review.folder";

// The review page's address for `folder`; `apiURL` is ComfyUI's api.apiURL (it knows a sub-path install).
export function reviewUrl(apiURL, folder) {
  const path = typeof apiURL === "function" ? apiURL(REVIEW_ROUTE) : REVIEW_ROUTE;
  return `${path}?${new URLSearchParams({ dir: folder.trim() })}`;
}

// A folder the user typed: trimmed, surrounding quotes (pasted from a file manager) removed; "" if none.
export function cleanFolder(text) {
  return String(text ?? "").trim().replace(/^(["'])(.*)\1$/, "$2").trim();
}
