# web.cmake - the dashboard build, included by src/api/CMakeLists.txt.
#
# web/src/main.js (ES modules, uPlot from node_modules) and the CSS it
# imports are bundled and minified by esbuild into ${WEB_OUT}/app.js and
# app.css; embed.cmake turns those, index.html and favicon.svg into
# ${WEB_OUT}/web_assets.c, which mote_api compiles (src/api/ui.c serves it).
# Every build folder (normal, sanitizer, TSan, fuzz) runs the same commands
# into its own binary folder; the sources are never written to.
set(WEB_DIR ${PROJECT_SOURCE_DIR}/web)
set(WEB_OUT ${CMAKE_CURRENT_BINARY_DIR}/web)

find_program(MOTE_ESBUILD esbuild PATHS ${PROJECT_SOURCE_DIR}/node_modules/.bin NO_DEFAULT_PATH)
if(NOT MOTE_ESBUILD)
  message(FATAL_ERROR "esbuild not found in ${PROJECT_SOURCE_DIR}/node_modules/.bin: "
                      "the dashboard is bundled at build time; run `make deps` (npm ci) first")
endif()
if(NOT EXISTS ${PROJECT_SOURCE_DIR}/node_modules/uplot/dist/uPlot.esm.js)
  message(FATAL_ERROR "node_modules/uplot is missing: run `make deps` (npm ci) first")
endif()

file(GLOB WEB_SOURCES CONFIGURE_DEPENDS ${WEB_DIR}/src/*.js ${WEB_DIR}/src/*.css)
add_custom_command(
  OUTPUT ${WEB_OUT}/app.js ${WEB_OUT}/app.css
  COMMAND ${CMAKE_COMMAND} -E make_directory ${WEB_OUT}
  COMMAND ${MOTE_ESBUILD} ${WEB_DIR}/src/main.js --bundle --minify --format=iife
          --target=es2020 --legal-comments=eof --log-level=warning
          --outfile=${WEB_OUT}/app.js
  DEPENDS ${WEB_SOURCES} ${PROJECT_SOURCE_DIR}/node_modules/uplot/package.json
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  COMMENT "Bundling the dashboard (esbuild)"
  VERBATIM)

set(WEB_FILES ${WEB_DIR}/index.html ${WEB_OUT}/app.js ${WEB_OUT}/app.css ${WEB_DIR}/favicon.svg)
add_custom_command(
  OUTPUT ${WEB_OUT}/web_assets.c
  COMMAND ${CMAKE_COMMAND} -DOUT=${WEB_OUT}/web_assets.c "-DFILES=${WEB_FILES}"
          -P ${WEB_DIR}/embed.cmake
  DEPENDS ${WEB_FILES} ${WEB_DIR}/embed.cmake
  COMMENT "Embedding the dashboard"
  VERBATIM)
set(MOTE_WEB_ASSETS_C ${WEB_OUT}/web_assets.c)
